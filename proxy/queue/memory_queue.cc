// The in-memory Queue: used when a destination has no `storage` key.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proxy/queue/queue.h"
#include "proxy/queue/wait_until.h"

namespace promrelay::queue {
namespace {

using internal::WaitUntil;

class MemoryQueue final : public Queue {
 public:
  MemoryQueue(uint64_t max_bytes, OnFull on_full)
      : max_bytes_(max_bytes), on_full_(on_full) {}

  absl::Status Append(std::vector<Record> records,
                      uint64_t* dropped_samples) override {
    if (records.empty()) return absl::OkStatus();
    uint64_t add_bytes = 0;
    const int64_t now = absl::ToUnixNanos(absl::Now());
    // Moved into shared, immutable records outside the lock: the sender
    // then gets them without a copy (ReadShared).
    std::vector<SharedRecord> shared;
    shared.reserve(records.size());
    for (Record& r : records) {
      add_bytes += r.payload.size();
      if (r.enqueue_unix_nanos == 0) r.enqueue_unix_nanos = now;
      shared.push_back(std::make_shared<const Record>(std::move(r)));
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return absl::UnavailableError("queue closed");
    if (add_bytes > max_bytes_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "records of ", add_bytes, " bytes exceed the whole queue bound of ",
          max_bytes_, " bytes"));
    }
    if (bytes_ + add_bytes > max_bytes_) {
      if (on_full_ == OnFull::kReject) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "queue full (", bytes_, " of ", max_bytes_, " bytes used)"));
      }
      uint64_t dropped = 0;
      while (bytes_ + add_bytes > max_bytes_ && !q_.empty()) {
        dropped += q_.front()->samples;
        PopFront();
        ++dropped_records_;
      }
      dropped_samples_ += dropped;
      if (dropped_samples != nullptr) *dropped_samples += dropped;
    }
    const bool was_empty = q_.empty();
    for (SharedRecord& r : shared) {
      bytes_ += r->payload.size();
      samples_ += r->samples;
      q_.push_back(std::move(r));
    }
    // The consumer sleeps until its sample target or the oldest record's
    // deadline; only those two can change what it waits for. A first record
    // whose deadline falls after the consumer's wake-up time changes
    // nothing, so it wakes nobody (no wake-up per batch for nothing).
    const bool wake =
        samples_ >= reader_target_samples_ ||
        (was_empty && absl::FromUnixNanos(q_.front()->enqueue_unix_nanos) +
                              reader_batch_deadline_ <
                          reader_wake_);
    const QueueEvent event{samples_, was_empty, false};
    // Notified after unlocking: a consumer woken under the lock would only
    // block again on the mutex (a futex wait and wake more per batch).
    lock.unlock();
    if (wake) cv_.notify_one();
    NotifyListener(event);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Record>> Read(size_t max_samples,
                                           absl::Duration batch_deadline,
                                           absl::Duration wait) override {
    std::vector<Record> out;
    absl::Status st =
        ReadImpl(max_samples, batch_deadline, wait,
                 [&out](const SharedRecord& r) { out.push_back(*r); });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<std::vector<SharedRecord>> ReadShared(
      size_t max_samples, absl::Duration batch_deadline,
      absl::Duration wait) override {
    std::vector<SharedRecord> out;
    absl::Status st =
        ReadImpl(max_samples, batch_deadline, wait,
                 [&out](const SharedRecord& r) { out.push_back(r); });
    if (!st.ok()) return st;
    return out;
  }

  absl::Status Commit(size_t count) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (count > read_end_ - read_begin_) {
      return absl::FailedPreconditionError(
          absl::StrCat("Commit(", count, ") but the last Read handed out only ",
                       read_end_ - read_begin_, " uncommitted records"));
    }
    read_begin_ += count;
    // Records dropped meanwhile (drop_oldest) are already gone: seq numbers
    // make sure only records the reader was given are removed.
    while (head_seq_ < read_begin_ && !q_.empty()) PopFront();
    return absl::OkStatus();
  }

  Stats GetStats() const override {
    std::unique_lock<std::mutex> lock(mu_);
    Stats s;
    s.bytes = bytes_;
    s.records = q_.size();
    s.samples = samples_;
    s.oldest_enqueue_unix_nanos =
        q_.empty() ? 0 : q_.front()->enqueue_unix_nanos;
    s.dropped_records = dropped_records_;
    s.dropped_samples = dropped_samples_;
    return s;
  }

  void Close() override {
    CloseAndNotify([this] {
      std::unique_lock<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
      return samples_;
    });
  }

 private:
  // Waits as Read() documents, then passes each record of the batch to
  // `take` (under the lock) and marks them handed out.
  template <typename Take>
  absl::Status ReadImpl(size_t max_samples, absl::Duration batch_deadline,
                        absl::Duration wait, Take take) {
    const absl::Time wait_until = absl::Now() + wait;
    std::unique_lock<std::mutex> lock(mu_);
    reader_target_samples_ = std::max<uint64_t>(max_samples, 1);
    reader_batch_deadline_ = batch_deadline;
    while (!closed_) {
      absl::Time wake = wait_until;
      if (!q_.empty()) {
        if (samples_ >= max_samples) break;
        const absl::Time due =
            absl::FromUnixNanos(q_.front()->enqueue_unix_nanos) +
            batch_deadline;
        wake = std::min(wake, due);
      }
      if (absl::Now() >= wake) break;
      reader_wake_ = wake;
      WaitUntil(cv_, lock, wake);
      reader_wake_ = absl::InfinitePast();
    }
    reader_target_samples_ = UINT64_MAX;
    if (closed_ && q_.empty()) return absl::UnavailableError("queue closed");

    size_t n = 0;
    uint64_t samples = 0, bytes = 0;
    for (const SharedRecord& r : q_) {
      if (n > 0 && (samples + r->samples > max_samples ||
                    bytes + r->payload.size() > kMaxReadPayloadBytes)) {
        break;
      }
      samples += r->samples;
      bytes += r->payload.size();
      take(r);
      ++n;
    }
    read_begin_ = head_seq_;
    read_end_ = head_seq_ + n;
    return absl::OkStatus();
  }

  void PopFront() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    bytes_ -= q_.front()->payload.size();
    samples_ -= q_.front()->samples;
    q_.pop_front();
    ++head_seq_;
  }

  const uint64_t max_bytes_;
  const OnFull on_full_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // the consumer waits here
  std::deque<SharedRecord> q_ ABSL_GUARDED_BY(mu_);
  uint64_t head_seq_ ABSL_GUARDED_BY(mu_) = 0;  // number of q_.front()
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t samples_ ABSL_GUARDED_BY(mu_) = 0;
  // [read_begin_, read_end_): records handed out by the last Read() and
  // not yet committed, by sequence number.
  uint64_t read_begin_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t read_end_ ABSL_GUARDED_BY(mu_) = 0;
  // What a consumer blocked in Read() waits for: this many samples, or the
  // front record's enqueue time + reader_batch_deadline_, or reader_wake_
  // (InfinitePast when nobody waits).
  uint64_t reader_target_samples_ ABSL_GUARDED_BY(mu_) = UINT64_MAX;
  absl::Duration reader_batch_deadline_ ABSL_GUARDED_BY(mu_);
  absl::Time reader_wake_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t dropped_records_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_samples_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<Queue> NewMemoryQueue(uint64_t max_bytes, OnFull on_full) {
  return std::make_unique<MemoryQueue>(max_bytes, on_full);
}

}  // namespace promrelay::queue
