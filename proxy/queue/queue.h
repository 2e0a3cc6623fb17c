// The per-destination-shard FIFO of ready-to-send remote_write payloads,
// behind one interface so memory and disk implementations are swappable.
#ifndef PROMRELAY_PROXY_QUEUE_QUEUE_H_
#define PROMRELAY_PROXY_QUEUE_QUEUE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace promrelay::queue {

// One unit of queued work: an uncompressed RW1 WriteRequest. Concatenating
// the payloads of several records is itself a valid WriteRequest (protobuf
// repeated fields concatenate), which is how the sender batches them.
struct Record {
  std::string payload;
  uint32_t samples = 0;  // samples + native histograms in payload
  uint32_t series = 0;
  int64_t enqueue_unix_nanos = 0;
};

struct Stats {
  uint64_t bytes = 0;    // payload bytes queued (on disk: file bytes)
  uint64_t records = 0;
  uint64_t samples = 0;
  int64_t oldest_enqueue_unix_nanos = 0;  // 0 when empty
  uint64_t segments = 0;                  // disk only
};

enum class OnFull { kReject, kDropOldest };

// Many producers (request handlers), one consumer (the shard's sender).
class Queue {
 public:
  virtual ~Queue() = default;

  // Appends all of `records` or none. When the bound would be exceeded:
  // with kReject returns ResourceExhausted; with kDropOldest drops the oldest
  // unread records to make room and adds their samples to *dropped_samples.
  // Returns once the records are as durable as the queue's policy promises.
  virtual absl::Status Append(std::vector<Record> records,
                              uint64_t* dropped_samples) = 0;

  // Waits until at least `max_samples` samples are queued, or the oldest
  // queued record is `batch_deadline` old, or `wait` has passed, then returns
  // the front records whose samples add up to at most `max_samples` (always
  // at least one record when any is queued; possibly none after `wait`).
  // The records stay queued: a later call returns them again until Commit().
  virtual absl::StatusOr<std::vector<Record>> Read(size_t max_samples,
                                                   absl::Duration batch_deadline,
                                                   absl::Duration wait) = 0;

  // Removes the first `count` records (the destination accepted them, or
  // they were dropped and counted). With a disk queue this commits the read
  // position durably.
  virtual absl::Status Commit(size_t count) = 0;

  virtual Stats GetStats() const = 0;

  // Wakes a blocked Read(), which then returns what is there; later Appends
  // fail with Unavailable.
  virtual void Close() = 0;
};

std::unique_ptr<Queue> NewMemoryQueue(uint64_t max_bytes, OnFull on_full);

}  // namespace promrelay::queue

#endif  // PROMRELAY_PROXY_QUEUE_QUEUE_H_
