// The disk Queue: append-only segment files with per-record checksums and a
// durably checkpointed read position, so an acknowledged record survives
// kill -9 (fsync: always) and a receiver outage. Layout of a queue
// directory:
//
//   <dir>/00000000000000000007.seg   records, appended; deleted once consumed
//   <dir>/checkpoint                 read position (segment, offset) + CRC
//   <dir>/LOCK                       flock()ed while the queue is open
//
// A record is a 32-byte header followed by its payload (little-endian):
//   magic u32 | payload length u32 (top bit: payload is a snappy block) |
//   samples u32 | series u32 |
//   enqueue unix nanos i64 | CRC-32C(payload) u32 |
//   CRC-32C(the 28 header bytes before it) u32
// The header CRC tells a torn tail (valid header, payload cut short) from a
// damaged record, and lets recovery resynchronize on the next valid header.
#ifndef PROMRELAY_PROXY_QUEUE_DISK_QUEUE_H_
#define PROMRELAY_PROXY_QUEUE_DISK_QUEUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/queue/queue.h"

namespace promrelay::queue {

enum class FsyncPolicy {
  kAlways,    // Append returns after fdatasync (group commit across callers)
  kInterval,  // a background thread fdatasyncs every fsync_interval
  kNever,     // the OS writes back when it likes
};

struct DiskQueueOptions {
  std::string directory;  // created (with parents) if missing
  // Bound on queued record bytes (headers included). Disk use can exceed it
  // by up to one segment: a segment is deleted only once fully consumed.
  uint64_t max_bytes = 1ull << 30;
  OnFull on_full = OnFull::kReject;
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  absl::Duration fsync_interval = absl::Seconds(1);
  // A new segment starts when the next append would pass this size.
  uint64_t segment_bytes = 64ull << 20;
  // How often the read position is persisted after Commit(). Records
  // committed within the last interval before a crash are sent again
  // (duplicates, never loss). Zero: Commit() persists it before returning.
  absl::Duration checkpoint_interval = absl::Seconds(1);
  // Called after every fdatasync of a segment file with its duration, from
  // whichever thread synced; must be cheap and thread-safe (for a histogram).
  std::function<void(absl::Duration)> fsync_observer;
};

// What opening the queue found and repaired. `messages` are human-readable
// (segment, offset, what was wrong) for the log.
struct RecoveryReport {
  bool checkpoint_found = false;
  bool checkpoint_corrupt = false;  // ignored; replay starts at the oldest
  uint64_t segments = 0;            // segment files kept
  uint64_t segments_deleted = 0;    // fully consumed before the crash
  uint64_t records_recovered = 0;   // queued, will be (re)sent
  uint64_t samples_recovered = 0;
  uint64_t bytes_recovered = 0;
  uint64_t corrupt_records_skipped = 0;  // damaged regions, each skipped
  uint64_t corrupt_bytes_skipped = 0;
  uint64_t corrupt_samples_lost = 0;  // from damaged records whose header
                                      // was intact; otherwise unknown
  uint64_t bytes_truncated = 0;       // torn/corrupt tail of the last segment
  std::vector<std::string> messages;

  bool damaged() const {
    return checkpoint_corrupt || corrupt_records_skipped > 0 ||
           bytes_truncated > 0;
  }
  // One line for the log.
  std::string Summary() const;
};

class DiskQueue : public Queue {
 public:
  // The result of the recovery done by OpenDiskQueue().
  virtual const RecoveryReport& recovery() const = 0;
  // Durability point for tests and shutdown: fdatasyncs appended records and
  // persists the read position now.
  virtual absl::Status Flush() = 0;
};

// Opens (recovering) or creates the queue in options.directory. Fails with
// FailedPrecondition if another process (or another DiskQueue) has it open.
absl::StatusOr<std::unique_ptr<DiskQueue>> OpenDiskQueue(
    const DiskQueueOptions& options);

inline constexpr size_t kRecordHeaderBytes = kMaxRecordOverheadBytes;
inline constexpr uint32_t kRecordMagic = 0x31515250;  // "PRQ1" on disk

// Subdirectories of `storage_root` that hold a disk queue (segment files or
// a checkpoint, directly or one level down, e.g. per shard) and whose name
// is not in `names`: the queues of destinations no longer configured. They
// are reported, never deleted. A missing root yields an empty list.
absl::StatusOr<std::vector<std::string>> FindOrphanQueueDirs(
    const std::string& storage_root, const std::vector<std::string>& names);

// True if `dir` holds segment files or a checkpoint, directly or in an
// immediate subdirectory.
bool IsQueueDirectory(const std::string& dir);

}  // namespace promrelay::queue

#endif  // PROMRELAY_PROXY_QUEUE_DISK_QUEUE_H_
