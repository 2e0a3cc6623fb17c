// The per-destination-shard FIFO of ready-to-send remote_write payloads,
// behind one interface so memory and disk implementations are swappable.
// The disk implementation lives in proxy/queue/disk_queue.h.
#ifndef PROMRELAY_PROXY_QUEUE_QUEUE_H_
#define PROMRELAY_PROXY_QUEUE_QUEUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace promrelay::queue {

// One unit of queued work: an RW1 WriteRequest, uncompressed or as a
// snappy block. The WriteRequests of several records concatenated are
// themselves a valid WriteRequest (protobuf repeated fields concatenate),
// which is how the sender batches them; snappy blocks join without
// recompression (wire::SnappyJoin).
struct Record {
  std::string payload;
  // True: payload is the snappy block of the WriteRequest (what the
  // pipeline queues: a queue then holds and writes about 8x fewer bytes).
  bool compressed = false;
  uint32_t samples = 0;  // samples + native histograms in payload
  uint32_t series = 0;
  // 0 means "now": Append() stamps it. Drives batch_deadline and
  // promrelay_queue_oldest_age_seconds.
  int64_t enqueue_unix_nanos = 0;
};

// A record handed out by ReadShared(): immutable and reference-counted, so
// handing it to the sender copies no payload bytes, and it stays valid after
// Commit() or a drop_oldest removed it from the queue.
using SharedRecord = std::shared_ptr<const Record>;

struct Stats {
  // Bytes counted against max_bytes. Memory: payload bytes (compressed
  // where the record is). Disk: encoded record bytes (header + payload)
  // between the read position and the end.
  uint64_t bytes = 0;
  uint64_t records = 0;
  uint64_t samples = 0;
  int64_t oldest_enqueue_unix_nanos = 0;  // 0 when empty

  // Disk only (always 0 for the memory queue). Counters are cumulative since
  // the queue was opened and include what recovery found at open.
  uint64_t segments = 0;         // segment files on disk
  uint64_t disk_bytes = 0;       // sum of segment file sizes
  uint64_t fsyncs = 0;           // fdatasync calls on segment files
  double fsync_seconds = 0;      // total time spent in them
  uint64_t checkpoints = 0;      // read-position checkpoint writes
  uint64_t corrupt_records = 0;  // damaged regions skipped
  uint64_t corrupt_bytes = 0;    // bytes in those regions
  uint64_t corrupt_samples = 0;  // samples lost with them, when known
  uint64_t truncated_bytes = 0;  // torn tail cut off at open
  uint64_t dropped_records = 0;  // by on_full: drop_oldest
  uint64_t dropped_samples = 0;  // by on_full: drop_oldest
};

enum class OnFull { kReject, kDropOldest };

// What a queue tells its listener (Queue::SetListener) after an append or
// a Close().
struct QueueEvent {
  uint64_t queued_samples = 0;  // samples queued right after the event
  bool was_empty = false;       // the append put records into an empty queue
  bool closed = false;          // the event is Close()
};

// Many producers (request handlers), one consumer (the shard's sender).
//
// Records are numbered in append order. Read() hands out a prefix of the
// queue without removing it; Commit(n) removes the first n records of the
// most recent Read(). drop_oldest removes records from the front, which may
// include records a Read() has handed out: Commit() then removes only what
// is still queued, never a record the consumer has not been given. Such a
// record is counted as dropped even if the in-flight send then delivers it,
// so dropped counts are an upper bound.
class Queue {
 public:
  virtual ~Queue() = default;

  // Appends all of `records` or none. When the bound would be exceeded:
  // with kReject returns ResourceExhausted; with kDropOldest drops the oldest
  // records to make room and adds their samples to *dropped_samples
  // (may be null). Records that together exceed the whole bound can never
  // fit: InvalidArgument. After Close(): Unavailable.
  // Returns once the records are as durable as the queue's policy promises.
  virtual absl::Status Append(std::vector<Record> records,
                              uint64_t* dropped_samples) = 0;

  // Two-phase Append for a caller that writes one request to several
  // queues: AppendAsync() queues the records (all or none, same errors as
  // Append) and starts making them durable in the background;
  // WaitDurable(token) returns once they are as durable as Append() would
  // have made them. Appending to every queue first and then waiting on each
  // overlaps the fsyncs of the different queues. Queues without a sync step
  // (memory; disk with fsync interval/never) complete in AppendAsync.
  virtual absl::StatusOr<uint64_t> AppendAsync(std::vector<Record> records,
                                               uint64_t* dropped_samples) {
    absl::Status st = Append(std::move(records), dropped_samples);
    if (!st.ok()) return st;
    return uint64_t{0};
  }
  virtual absl::Status WaitDurable(uint64_t token) { return absl::OkStatus(); }

  // Waits until at least `max_samples` samples are queued, or the oldest
  // queued record is `batch_deadline` old, or `wait` has passed, or the
  // queue is closed, then returns the front records whose samples add up to
  // at most `max_samples` and whose payloads add up to at most
  // kMaxReadPayloadBytes (always at least one record when any is queued;
  // possibly none after `wait`). Once closed it does not wait, and returns
  // Unavailable when nothing is left, so a draining sender knows to stop.
  // The records stay queued: a later call returns them again until Commit().
  virtual absl::StatusOr<std::vector<Record>> Read(
      size_t max_samples, absl::Duration batch_deadline,
      absl::Duration wait) = 0;

  // Read() without copying payloads where the queue can avoid it (the
  // memory queue hands out the records it holds). Same waiting, batching
  // and Commit() contract as Read(). This default wraps Read().
  virtual absl::StatusOr<std::vector<SharedRecord>> ReadShared(
      size_t max_samples, absl::Duration batch_deadline, absl::Duration wait) {
    absl::StatusOr<std::vector<Record>> got =
        Read(max_samples, batch_deadline, wait);
    if (!got.ok()) return got.status();
    std::vector<SharedRecord> out;
    out.reserve(got->size());
    for (Record& r : *got) {
      out.push_back(std::make_shared<const Record>(std::move(r)));
    }
    return out;
  }

  // Removes the first `count` records returned by the last Read() (the
  // destination accepted them, or they were dropped and counted); several
  // Commits may split one Read. More than the last Read handed out and not
  // yet committed is FailedPrecondition and removes nothing. With a disk
  // queue this also moves the durable read position (see disk_queue.h).
  // Works after Close(), so a sender can drain.
  virtual absl::Status Commit(size_t count) = 0;

  virtual Stats GetStats() const = 0;

  // Wakes a blocked Read(), which then returns what is there; later Appends
  // fail with Unavailable.
  virtual void Close() = 0;

  // For a consumer that waits on an event loop rather than blocking in
  // Read(): `listener` is called after every successful append and after
  // Close(), from the appending (closing) thread and outside the queue's
  // locks, so it may call Read(). It must be quick and must not append.
  // Replaces the previous listener; nullptr removes it. A consumer must
  // still poll now and then: an implementation may not call it.
  void SetListener(std::function<void(const QueueEvent&)> listener) {
    std::shared_ptr<const std::function<void(const QueueEvent&)>> next;
    if (listener) {
      next = std::make_shared<const std::function<void(const QueueEvent&)>>(
          std::move(listener));
    }
    std::lock_guard<std::mutex> lock(listener_mu_);
    listener_.swap(next);
  }

 protected:
  // For Close(): `close` marks the queue closed under the implementation's
  // lock and returns the samples still queued; the listener hears of it
  // after the lock is released.
  template <typename CloseFn>
  void CloseAndNotify(CloseFn close) {
    QueueEvent event;
    event.closed = true;
    event.queued_samples = close();
    NotifyListener(event);
  }

  // Implementations call this after an append or Close(), with no lock held.
  void NotifyListener(const QueueEvent& event) const {
    std::shared_ptr<const std::function<void(const QueueEvent&)>> listener;
    {
      std::lock_guard<std::mutex> lock(listener_mu_);
      listener = listener_;
    }
    if (listener) (*listener)(event);
  }

 private:
  mutable std::mutex listener_mu_;
  std::shared_ptr<const std::function<void(const QueueEvent&)>> listener_;
};

// A Read() stops adding records once their payloads (as queued, so mostly
// compressed) reach this size. The sender bounds each request's
// uncompressed size on its own.
inline constexpr uint64_t kMaxReadPayloadBytes = 16ull << 20;

// What a queue may count per record beyond its payload against its bound
// (the disk queue's record header; the memory queue counts none).
inline constexpr uint64_t kMaxRecordOverheadBytes = 32;

// `max_bytes` bounds the payload bytes held.
std::unique_ptr<Queue> NewMemoryQueue(uint64_t max_bytes, OnFull on_full);

}  // namespace promrelay::queue

#endif  // PROMRELAY_PROXY_QUEUE_QUEUE_H_
