// A minimal in-memory queue::Queue for the forward tests, with the
// contract's Read/Commit semantics and counters the tests assert on. It lets
// the sender be tested without depending on the queue module's internals.
#ifndef PROMRELAY_TESTS_FORWARD_TEST_QUEUE_H_
#define PROMRELAY_TESTS_FORWARD_TEST_QUEUE_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "absl/time/clock.h"
#include "proxy/queue/queue.h"

namespace promrelay::forward::testing {

class TestQueue : public queue::Queue {
 public:
  absl::Status Append(std::vector<queue::Record> records,
                      uint64_t* dropped_samples) override {
    queue::QueueEvent event;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return absl::UnavailableError("closed");
      event.was_empty = records_.empty();
      for (auto& r : records) {
        if (r.enqueue_unix_nanos == 0)
          r.enqueue_unix_nanos = absl::GetCurrentTimeNanos();
        records_.push_back(std::move(r));
      }
      for (const auto& r : records_) event.queued_samples += r.samples;
      cv_.notify_all();
    }
    if (notify_listener_) NotifyListener(event);
    return absl::OkStatus();
  }

  // Off: the sender must find appended records by polling alone.
  void set_notify_listener(bool on) { notify_listener_ = on; }

  absl::StatusOr<std::vector<queue::Record>> Read(
      size_t max_samples, absl::Duration batch_deadline,
      absl::Duration wait) override {
    std::unique_lock<std::mutex> lock(mu_);
    absl::Time until = absl::Now() + wait;
    while (!closed_) {
      size_t samples = 0;
      for (const auto& r : records_) samples += r.samples;
      bool due = !records_.empty() &&
                 absl::Now() - absl::FromUnixNanos(
                                   records_.front().enqueue_unix_nanos) >=
                     batch_deadline;
      if (samples >= max_samples || due) break;
      absl::Time now = absl::Now();
      if (now >= until) break;
      cv_.wait_for(lock, absl::ToChronoNanoseconds(
                             std::min(until - now, absl::Milliseconds(20))));
    }
    ++reads_;
    std::vector<queue::Record> out;
    size_t samples = 0;
    for (const auto& r : records_) {
      if (!out.empty() && samples + r.samples > max_samples) break;
      samples += r.samples;
      out.push_back(r);
    }
    return out;
  }

  absl::Status Commit(size_t count) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (count > records_.size()) {
      return absl::FailedPreconditionError("commit past end");
    }
    for (size_t i = 0; i < count; ++i) {
      committed_samples_ += records_.front().samples;
      records_.pop_front();
    }
    ++commits_;
    cv_.notify_all();
    return absl::OkStatus();
  }

  queue::Stats GetStats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    queue::Stats st;
    for (const auto& r : records_) {
      st.bytes += r.payload.size();
      st.samples += r.samples;
    }
    st.records = records_.size();
    if (!records_.empty())
      st.oldest_enqueue_unix_nanos = records_.front().enqueue_unix_nanos;
    return st;
  }

  void Close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
    }
    if (notify_listener_) NotifyListener({0, false, true});
  }

  uint64_t committed_samples() const {
    std::lock_guard<std::mutex> lock(mu_);
    return committed_samples_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.size();
  }
  // Commit() calls so far.
  uint64_t commits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return commits_;
  }
  // Waits until the queue is empty; false on timeout (bounds a hang only).
  bool WaitEmpty(absl::Duration timeout = absl::Seconds(30)) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return records_.empty(); });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<queue::Record> records_;
  bool closed_ = false;
  std::atomic<bool> notify_listener_{true};
  uint64_t committed_samples_ = 0;
  uint64_t reads_ = 0;
  uint64_t commits_ = 0;
};

}  // namespace promrelay::forward::testing

#endif  // PROMRELAY_TESTS_FORWARD_TEST_QUEUE_H_
