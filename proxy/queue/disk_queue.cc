// The disk Queue. Invariants that make crashes safe:
//  - Records are only appended; a record is acknowledged (fsync: always) only
//    after an fdatasync that covers it.
//  - The durable checkpoint never points past a record that was not
//    committed, so a crash can only cause re-sending, never loss.
//  - A segment is unlinked only after a durable checkpoint lies beyond it.
//  - New segments always get a number above every existing segment and the
//    checkpoint's, and each open starts a fresh segment, so data appended
//    after a recovery is never hidden behind an old checkpoint offset.
#include "proxy/queue/disk_queue.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <compare>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proxy/queue/crc32c.h"
#include "proxy/queue/wait_until.h"

namespace promrelay::queue {
namespace {

using internal::WaitUntil;

constexpr char kCheckpointName[] = "checkpoint";
constexpr char kCheckpointTmpName[] = "checkpoint.tmp";
constexpr char kLockName[] = "LOCK";
constexpr char kCheckpointMagic[8] = {'P', 'R', 'Q', 'C', 'K', 'P', 'T', '1'};
constexpr size_t kCheckpointBytes = 28;  // magic, segment, offset, crc
constexpr uint64_t kMaxPayloadBytes = 1ull << 30;
constexpr size_t kMaxReportMessages = 100;
constexpr size_t kScanChunk = 1 << 20;

// ---------------------------------------------------------------------------
// Encoding.

void Put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

// The top bit of the length word marks a compressed payload; payloads are
// at most kMaxPayloadBytes (2^30), so the bit was always 0 before.
constexpr uint32_t kCompressedFlag = uint32_t{1} << 31;

struct Header {
  uint32_t length = 0;
  bool compressed = false;
  uint32_t samples = 0;
  uint32_t series = 0;
  int64_t enqueue_unix_nanos = 0;
  uint32_t payload_crc = 0;
};

void EncodeHeader(const Record& r, char* out) {
  Put32(out, kRecordMagic);
  Put32(out + 4, static_cast<uint32_t>(r.payload.size()) |
                     (r.compressed ? kCompressedFlag : 0));
  Put32(out + 8, r.samples);
  Put32(out + 12, r.series);
  Put64(out + 16, static_cast<uint64_t>(r.enqueue_unix_nanos));
  Put32(out + 24, Crc32c(r.payload));
  Put32(out + 28, Crc32c(out, 28));
}

// False if the magic or the header checksum is wrong.
bool DecodeHeader(const char* p, Header* h) {
  if (Get32(p) != kRecordMagic) return false;
  if (Get32(p + 28) != Crc32c(p, 28)) return false;
  const uint32_t length_word = Get32(p + 4);
  h->length = length_word & ~kCompressedFlag;
  h->compressed = (length_word & kCompressedFlag) != 0;
  h->samples = Get32(p + 8);
  h->series = Get32(p + 12);
  h->enqueue_unix_nanos = static_cast<int64_t>(Get64(p + 16));
  h->payload_crc = Get32(p + 24);
  return true;
}

// ---------------------------------------------------------------------------
// File helpers.

absl::Status ErrnoStatus(int err, absl::string_view what,
                         absl::string_view path) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Writes everything or fails with errno set.
bool PWriteAll(int fd, const char* data, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return true;
}

// Reads up to n bytes (fewer only at end of file); -1 on error.
ssize_t PReadFull(int fd, char* data, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, data + got, n - got, static_cast<off_t>(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

std::string SegmentName(uint64_t seq) {
  return absl::StrFormat("%020u.seg", seq);
}

bool ParseSegmentName(const std::string& name, uint64_t* seq) {
  if (name.size() != 24 || name.compare(20, 4, ".seg") != 0) return false;
  uint64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *seq = v;
  return true;
}

struct Pos {
  uint64_t seg = 0;
  uint64_t off = 0;
  auto operator<=>(const Pos&) const = default;
};

std::string PosString(const Pos& p) {
  return absl::StrCat(SegmentName(p.seg), " offset ", p.off);
}

struct Segment {
  uint64_t seq = 0;
  std::string path;
  int fd = -1;
  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};

// Sequential reads of one file through a buffer, for scanning.
class Scanner {
 public:
  Scanner(int fd, uint64_t size) : fd_(fd), size_(size) {}

  // [off, off + n) or nullptr when that is past the end or unreadable.
  const char* Get(uint64_t off, size_t n) {
    if (off > size_ || n > size_ - off) return nullptr;
    if (off >= buf_off_ && off + n <= buf_off_ + buf_.size()) {
      return buf_.data() + (off - buf_off_);
    }
    size_t want = static_cast<size_t>(
        std::min<uint64_t>(std::max(n, kScanChunk), size_ - off));
    buf_.resize(want);
    ssize_t got = PReadFull(fd_, buf_.data(), want, off);
    if (got < 0 || static_cast<size_t>(got) < n) {
      if (got < 0) error_ = errno;
      buf_.clear();
      buf_off_ = 0;
      return nullptr;
    }
    buf_.resize(static_cast<size_t>(got));
    buf_off_ = off;
    return buf_.data();
  }
  uint64_t size() const { return size_; }
  int error() const { return error_; }

 private:
  int fd_;
  uint64_t size_;
  std::string buf_;
  uint64_t buf_off_ = 0;
  int error_ = 0;
};

enum class Probe {
  kOk,
  kTorn,        // header or payload runs past the end of the file
  kBadHeader,   // magic or header checksum wrong: resynchronize
  kBadPayload,  // header intact, payload checksum wrong: skip it
};

Probe ProbeRecord(Scanner& s, uint64_t off, Header* h) {
  if (s.size() - off < kRecordHeaderBytes) return Probe::kTorn;
  const char* p = s.Get(off, kRecordHeaderBytes);
  if (p == nullptr) return Probe::kBadHeader;
  if (!DecodeHeader(p, h)) return Probe::kBadHeader;
  if (h->length > s.size() - off - kRecordHeaderBytes) return Probe::kTorn;
  const char* payload = s.Get(off + kRecordHeaderBytes, h->length);
  if (payload == nullptr) return Probe::kBadPayload;
  if (Crc32c(payload, h->length) != h->payload_crc) return Probe::kBadPayload;
  return Probe::kOk;
}

// The offset of the first intact record at or after `from`, or the file
// size when there is none.
uint64_t FindNextValid(Scanner& s, uint64_t from) {
  char magic[4];
  Put32(magic, kRecordMagic);
  uint64_t p = from;
  while (p + kRecordHeaderBytes <= s.size()) {
    const size_t len =
        static_cast<size_t>(std::min<uint64_t>(kScanChunk / 2, s.size() - p));
    const char* c = s.Get(p, len);
    if (c == nullptr) return s.size();
    const void* hit = len >= 4 ? memmem(c, len, magic, 4) : nullptr;
    if (hit == nullptr) {
      if (len < 4) break;
      p += len - 3;  // the magic may straddle the chunk boundary
      continue;
    }
    const uint64_t q =
        p + static_cast<uint64_t>(static_cast<const char*>(hit) - c);
    Header h;
    if (ProbeRecord(s, q, &h) == Probe::kOk) return q;
    p = q + 1;
  }
  return s.size();
}

absl::Status SyncDir(int dir_fd, const std::string& dir) {
  if (::fsync(dir_fd) != 0) return ErrnoStatus(errno, "fsync directory", dir);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------

class DiskQueueImpl final : public DiskQueue {
 public:
  explicit DiskQueueImpl(const DiskQueueOptions& options)
      : opts_(options), dir_(options.directory) {}

  ~DiskQueueImpl() override {
    Close();
    {
      std::unique_lock<std::mutex> lock(mu_);
      stopping_ = true;
      bg_cv_.notify_one();
    }
    if (bg_.joinable()) bg_.join();
    if (opened_) (void)Flush();
    {
      std::unique_lock<std::mutex> lock(mu_);
      segs_.clear();
      write_seg_.reset();
    }
    if (dir_fd_ >= 0) ::close(dir_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  }

  absl::Status Open();

  absl::Status Append(std::vector<Record> records,
                      uint64_t* dropped_samples) override;
  absl::StatusOr<uint64_t> AppendAsync(std::vector<Record> records,
                                       uint64_t* dropped_samples) override;
  absl::Status WaitDurable(uint64_t token) override;
  absl::StatusOr<std::vector<Record>> Read(size_t max_samples,
                                           absl::Duration batch_deadline,
                                           absl::Duration wait) override;
  absl::Status Commit(size_t count) override;
  Stats GetStats() const override;
  void Close() override {
    CloseAndNotify([this] {
      std::unique_lock<std::mutex> lock(mu_);
      closed_ = true;
      reader_cv_.notify_all();
      return samples_;
    });
  }
  const RecoveryReport& recovery() const override { return report_; }
  absl::Status Flush() override;

 private:
  // A record handed out by the last Read().
  struct Handed {
    Pos end;  // just past the record
    uint64_t bytes = 0;
    uint32_t samples = 0;
  };
  // What Read() needs to walk the files without holding mu_.
  struct View {
    std::map<uint64_t, std::pair<std::shared_ptr<Segment>, uint64_t>> segs;
    std::map<Pos, uint64_t> holes;
    Pos end;
  };

  Pos Tail() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Pos{write_seg_->seq, write_size_};
  }
  uint64_t SizeOf(uint64_t seq) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (seq == write_seg_->seq) return write_size_;
    auto it = sizes_.find(seq);
    return it == sizes_.end() ? 0 : it->second;
  }
  // Moves `p` over known damaged regions and the ends of sealed segments.
  Pos Normalize(Pos p) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static Pos NormalizeInView(const View& v, Pos p);
  // Re-reads the front record's enqueue time; resets counters when empty.
  void HeadChanged() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Skips a damaged record found at head_ after open.
  void SkipCorruptHead(bool header_ok, const Header& h)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Append() and AppendAsync(); *lsn is the end of the written records.
  // Appends; `*event` (for the listener) is set once the records are in.
  absl::Status Write(std::vector<Record> records, uint64_t* dropped_samples,
                     bool wait, uint64_t* lsn, QueueEvent* event);
  absl::Status Rotate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CreateSegment(uint64_t seq, bool sync_dir)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leader/follower group commit: returns once durable_lsn_ >= lsn.
  absl::Status SyncUpTo(std::unique_lock<std::mutex>& lock, uint64_t lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountFsync(absl::Duration d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteCheckpoint(bool force) ABSL_LOCKS_EXCLUDED(mu_);
  void Background();
  absl::Status Recover();
  void Note(std::string msg) {
    if (report_.messages.size() < kMaxReportMessages) {
      report_.messages.push_back(std::move(msg));
    }
  }

  const DiskQueueOptions opts_;
  const std::string dir_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
  bool opened_ = false;
  RecoveryReport report_;  // written only during Open()
  std::thread bg_;

  mutable std::mutex mu_;
  std::condition_variable reader_cv_;  // the consumer waits for data
  std::condition_variable
      sync_cv_;                    // group commit followers wait for the leader
  std::condition_variable bg_cv_;  // wakes the background thread
  std::map<uint64_t, std::shared_ptr<Segment>> segs_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, uint64_t> sizes_ ABSL_GUARDED_BY(mu_);  // sealed ones
  std::shared_ptr<Segment> write_seg_ ABSL_GUARDED_BY(mu_);
  uint64_t write_size_ ABSL_GUARDED_BY(mu_) = 0;
  // Damaged regions: start -> end offset in the same segment.
  std::map<Pos, uint64_t> holes_ ABSL_GUARDED_BY(mu_);
  Pos head_ ABSL_GUARDED_BY(mu_);  // first queued record, normalized
  // Records are numbered; [head_index_, tail_index_) are queued.
  uint64_t head_index_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tail_index_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t head_enqueue_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t samples_ ABSL_GUARDED_BY(mu_) = 0;
  // Handed out by the last Read and not yet committed: records
  // [read_begin_index_, read_begin_index_ + handed_.size()).
  uint64_t read_begin_index_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Handed> handed_ ABSL_GUARDED_BY(mu_);
  uint64_t reader_target_ ABSL_GUARDED_BY(mu_) = UINT64_MAX;
  // Log sequence numbers: bytes appended since open.
  uint64_t written_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  bool sync_in_progress_ ABSL_GUARDED_BY(mu_) = false;
  bool sync_requested_ ABSL_GUARDED_BY(mu_) = false;  // by AppendAsync
  // Sealed segments not yet fdatasynced, oldest first (not kept with
  // fsync: never), and whether the directory needs an fsync for segments
  // created since the last one.
  std::vector<std::shared_ptr<Segment>> unsynced_ ABSL_GUARDED_BY(mu_);
  uint64_t dir_gen_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dir_synced_gen_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // sticky write/fsync failure
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool checkpoint_dirty_ ABSL_GUARDED_BY(mu_) = false;
  // Counters for Stats.
  uint64_t fsyncs_ ABSL_GUARDED_BY(mu_) = 0;
  double fsync_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t checkpoints_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t corrupt_records_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t corrupt_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t corrupt_samples_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_records_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_samples_ ABSL_GUARDED_BY(mu_) = 0;

  // Serializes checkpoint writers; taken before mu_, never while holding it.
  std::mutex ckpt_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  Pos ckpt_written_ ABSL_GUARDED_BY(ckpt_mu_);
  bool ckpt_valid_ ABSL_GUARDED_BY(ckpt_mu_) = false;
};

Pos DiskQueueImpl::Normalize(Pos p) const {
  for (;;) {
    auto h = holes_.find(p);
    if (h != holes_.end()) {
      p.off = h->second;
      continue;
    }
    if (p.seg == write_seg_->seq) return p;
    if (p.off >= SizeOf(p.seg)) {
      auto next = segs_.upper_bound(p.seg);
      if (next == segs_.end()) return Tail();
      p = Pos{next->first, 0};
      continue;
    }
    if (segs_.find(p.seg) == segs_.end()) {
      auto next = segs_.upper_bound(p.seg);
      if (next == segs_.end()) return Tail();
      p = Pos{next->first, 0};
      continue;
    }
    return p;
  }
}

Pos DiskQueueImpl::NormalizeInView(const View& v, Pos p) {
  for (;;) {
    if (p >= v.end) return v.end;
    auto h = v.holes.find(p);
    if (h != v.holes.end()) {
      p.off = h->second;
      continue;
    }
    auto it = v.segs.find(p.seg);
    if (it == v.segs.end() || p.off >= it->second.second) {
      auto next = v.segs.upper_bound(p.seg);
      if (next == v.segs.end()) return v.end;
      p = Pos{next->first, 0};
      continue;
    }
    return p;
  }
}

void DiskQueueImpl::HeadChanged() {
  const Pos tail = Tail();
  if (head_ >= tail || head_index_ >= tail_index_) {
    // Empty. Resetting here also undoes any drift left by damaged regions
    // whose record count was unknown.
    head_ = tail;
    head_index_ = tail_index_;
    bytes_ = 0;
    samples_ = 0;
    head_enqueue_ = 0;
    return;
  }
  char buf[kRecordHeaderBytes];
  Header h;
  auto it = segs_.find(head_.seg);
  if (it != segs_.end() &&
      PReadFull(it->second->fd, buf, sizeof buf, head_.off) ==
          static_cast<ssize_t>(sizeof buf) &&
      DecodeHeader(buf, &h)) {
    head_enqueue_ = h.enqueue_unix_nanos;
  } else {
    // Damaged; Read() or a drop will skip it. Meanwhile age from now.
    head_enqueue_ = absl::ToUnixNanos(absl::Now());
  }
}

void DiskQueueImpl::SkipCorruptHead(bool header_ok, const Header& h) {
  auto it = segs_.find(head_.seg);
  const uint64_t seg_size = SizeOf(head_.seg);
  uint64_t end = seg_size;
  if (header_ok) {
    end =
        std::min<uint64_t>(head_.off + kRecordHeaderBytes + h.length, seg_size);
    corrupt_samples_ += h.samples;
    samples_ -= std::min<uint64_t>(samples_, h.samples);
  } else if (it != segs_.end()) {
    Scanner s(it->second->fd, seg_size);
    end = FindNextValid(s, head_.off + 1);
  }
  ++corrupt_records_;
  corrupt_bytes_ += end - head_.off;
  bytes_ -= std::min<uint64_t>(bytes_, end - head_.off);
  holes_[head_] = end;
  head_ = Normalize(head_);
  // The region held at least one counted record; if it held more, the
  // count stays high until the queue drains (HeadChanged resets it).
  ++head_index_;
  checkpoint_dirty_ = true;
  HeadChanged();
}

absl::Status DiskQueueImpl::CreateSegment(uint64_t seq, bool sync_dir) {
  auto seg = std::make_shared<Segment>();
  seg->seq = seq;
  seg->path = absl::StrCat(dir_, "/", SegmentName(seq));
  seg->fd =
      ::open(seg->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (seg->fd < 0) return ErrnoStatus(errno, "create segment", seg->path);
  if (sync_dir) {
    absl::Status st = SyncDir(dir_fd_, dir_);
    if (!st.ok()) {
      ::unlink(seg->path.c_str());  // so a retry can create it again
      return st;
    }
  }
  if (write_seg_ != nullptr) sizes_[write_seg_->seq] = write_size_;
  segs_[seq] = seg;
  write_seg_ = seg;
  write_size_ = 0;
  return absl::OkStatus();
}

void DiskQueueImpl::CountFsync(absl::Duration d) {
  ++fsyncs_;
  fsync_seconds_ += absl::ToDoubleSeconds(d);
}

absl::Status DiskQueueImpl::Rotate() {
  // No syncing under the lock: the old segment and the new directory entry
  // are synced by the next group commit (or interval flush) before any
  // record written after this point is reported durable.
  std::shared_ptr<Segment> old = write_seg_;
  absl::Status st = CreateSegment(write_seg_->seq + 1, false);
  if (!st.ok()) return st;
  if (opts_.fsync != FsyncPolicy::kNever) {
    unsynced_.push_back(std::move(old));
    ++dir_gen_;
  }
  head_ = Normalize(head_);
  return absl::OkStatus();
}

absl::Status DiskQueueImpl::SyncUpTo(std::unique_lock<std::mutex>& lock,
                                     uint64_t lsn) {
  while (durable_lsn_ < lsn) {
    if (!failed_.ok()) return failed_;
    if (sync_in_progress_) {
      sync_cv_.wait(lock);
      continue;
    }
    // Leader: syncs everything written so far, including the records of the
    // followers that queued up behind the previous sync, outside the lock.
    sync_in_progress_ = true;
    const uint64_t target = written_lsn_;
    std::vector<std::shared_ptr<Segment>> segs = unsynced_;
    const size_t sealed = segs.size();
    segs.push_back(write_seg_);
    const uint64_t dir_gen = dir_gen_;
    const bool sync_dir = dir_gen_ != dir_synced_gen_;
    lock.unlock();
    absl::Status st;
    std::vector<absl::Duration> times;
    for (const auto& seg : segs) {
      const absl::Time t0 = absl::Now();
      if (::fdatasync(seg->fd) != 0) {
        // After a failed fsync the kernel may have dropped the dirty pages:
        // nothing written since can be promised durable. Stop accepting.
        st = ErrnoStatus(errno, "fdatasync", seg->path);
        break;
      }
      times.push_back(absl::Now() - t0);
      if (opts_.fsync_observer) opts_.fsync_observer(times.back());
    }
    if (st.ok() && sync_dir) st = SyncDir(dir_fd_, dir_);
    lock.lock();
    sync_in_progress_ = false;
    for (absl::Duration d : times) CountFsync(d);
    if (!st.ok()) {
      failed_ = st;
    } else {
      durable_lsn_ = std::max(durable_lsn_, target);
      unsynced_.erase(unsynced_.begin(), unsynced_.begin() + sealed);
      dir_synced_gen_ = std::max(dir_synced_gen_, dir_gen);
    }
    sync_cv_.notify_all();
  }
  return absl::OkStatus();
}

absl::Status DiskQueueImpl::Append(std::vector<Record> records,
                                   uint64_t* dropped_samples) {
  uint64_t lsn;
  QueueEvent event;
  absl::Status st =
      Write(std::move(records), dropped_samples, /*wait=*/true, &lsn, &event);
  // Also after a failed fsync: the records are in the file and readable.
  if (lsn != 0) NotifyListener(event);
  return st;
}

absl::StatusOr<uint64_t> DiskQueueImpl::AppendAsync(std::vector<Record> records,
                                                    uint64_t* dropped_samples) {
  uint64_t lsn = 0;
  QueueEvent event;
  absl::Status st =
      Write(std::move(records), dropped_samples, /*wait=*/false, &lsn, &event);
  if (lsn != 0) NotifyListener(event);
  if (!st.ok()) return st;
  return lsn;
}

absl::Status DiskQueueImpl::WaitDurable(uint64_t token) {
  if (opts_.fsync != FsyncPolicy::kAlways) return absl::OkStatus();
  std::unique_lock<std::mutex> lock(mu_);
  return SyncUpTo(lock, token);
}

absl::Status DiskQueueImpl::Write(std::vector<Record> records,
                                  uint64_t* dropped_samples, bool wait,
                                  uint64_t* lsn, QueueEvent* event) {
  *lsn = 0;
  if (records.empty()) return absl::OkStatus();
  // Encode and checksum outside the lock.
  const int64_t now = absl::ToUnixNanos(absl::Now());
  uint64_t total = 0, samples = 0;
  for (Record& r : records) {
    if (r.payload.size() > kMaxPayloadBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("record payload of ", r.payload.size(),
                       " bytes exceeds the limit of ", kMaxPayloadBytes));
    }
    if (r.enqueue_unix_nanos == 0) r.enqueue_unix_nanos = now;
    total += kRecordHeaderBytes + r.payload.size();
    samples += r.samples;
  }
  std::string buf;
  buf.resize(total);
  {
    char* p = buf.data();
    for (const Record& r : records) {
      EncodeHeader(r, p);
      std::memcpy(p + kRecordHeaderBytes, r.payload.data(), r.payload.size());
      p += kRecordHeaderBytes + r.payload.size();
    }
  }

  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return absl::UnavailableError("queue closed");
  if (!failed_.ok()) return failed_;
  if (total > opts_.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "records of ", total, " bytes exceed the whole queue bound of ",
        opts_.max_bytes, " bytes"));
  }
  if (bytes_ + total > opts_.max_bytes) {
    if (opts_.on_full == OnFull::kReject) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "queue full (", bytes_, " of ", opts_.max_bytes, " bytes used)"));
    }
    // Drop whole records from the front by moving the read position.
    uint64_t dropped = 0;
    while (bytes_ + total > opts_.max_bytes && head_index_ < tail_index_) {
      char hb[kRecordHeaderBytes];
      Header h;
      auto it = segs_.find(head_.seg);
      const bool ok =
          it != segs_.end() &&
          PReadFull(it->second->fd, hb, sizeof hb, head_.off) ==
              static_cast<ssize_t>(sizeof hb) &&
          DecodeHeader(hb, &h) &&
          head_.off + kRecordHeaderBytes + h.length <= SizeOf(head_.seg);
      if (!ok) {
        SkipCorruptHead(false, h);
        continue;
      }
      const uint64_t rec_bytes = kRecordHeaderBytes + h.length;
      bytes_ -= std::min(bytes_, rec_bytes);
      samples_ -= std::min<uint64_t>(samples_, h.samples);
      dropped += h.samples;
      ++dropped_records_;
      ++head_index_;
      head_ = Normalize(Pos{head_.seg, head_.off + rec_bytes});
      checkpoint_dirty_ = true;
      HeadChanged();
    }
    dropped_samples_ += dropped;
    if (dropped_samples != nullptr) *dropped_samples += dropped;
  }
  if (write_size_ > 0 && write_size_ + total > opts_.segment_bytes) {
    absl::Status st = Rotate();
    if (!st.ok()) return st;
  }
  const bool was_empty = head_index_ == tail_index_;
  if (!PWriteAll(write_seg_->fd, buf.data(), buf.size(), write_size_)) {
    const int err = errno;
    // Cut off a partial write so the segment stays a clean record sequence.
    if (::ftruncate(write_seg_->fd, static_cast<off_t>(write_size_)) != 0) {
      failed_ =
          ErrnoStatus(errno, "truncate after failed write", write_seg_->path);
    }
    return ErrnoStatus(err, "write", write_seg_->path);
  }
  write_size_ += total;
  written_lsn_ += total;
  const uint64_t my_lsn = written_lsn_;
  bytes_ += total;
  samples_ += samples;
  tail_index_ += records.size();
  if (was_empty) {
    head_ = Normalize(head_);
    head_enqueue_ = records.front().enqueue_unix_nanos;
  }
  if (was_empty || samples_ >= reader_target_) reader_cv_.notify_one();
  *lsn = my_lsn;
  *event = QueueEvent{samples_, was_empty, false};
  if (opts_.fsync != FsyncPolicy::kAlways) return absl::OkStatus();
  if (wait) return SyncUpTo(lock, my_lsn);
  // The background thread leads this sync, in parallel with the caller's
  // appends to other queues.
  sync_requested_ = true;
  bg_cv_.notify_one();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Record>> DiskQueueImpl::Read(
    size_t max_samples, absl::Duration batch_deadline, absl::Duration wait) {
  const absl::Time wait_until = absl::Now() + wait;
  for (;;) {
    View view;
    uint64_t start_index;
    Pos start_pos;
    {
      std::unique_lock<std::mutex> lock(mu_);
      reader_target_ = std::max<uint64_t>(max_samples, 1);
      while (!closed_) {
        absl::Time wake = wait_until;
        if (head_index_ < tail_index_) {
          if (samples_ >= max_samples) break;
          wake = std::min(wake,
                          absl::FromUnixNanos(head_enqueue_) + batch_deadline);
        }
        if (absl::Now() >= wake) break;
        WaitUntil(reader_cv_, lock, wake);
      }
      reader_target_ = UINT64_MAX;
      if (head_index_ == tail_index_) {
        read_begin_index_ = head_index_;
        handed_.clear();
        if (closed_) return absl::UnavailableError("queue closed");
        return std::vector<Record>{};
      }
      for (auto it = segs_.lower_bound(head_.seg); it != segs_.end(); ++it) {
        view.segs[it->first] = {it->second, SizeOf(it->first)};
      }
      for (auto it = holes_.lower_bound(Pos{head_.seg, 0}); it != holes_.end();
           ++it) {
        view.holes.insert(*it);
      }
      view.end = Tail();
      start_index = head_index_;
      start_pos = head_;
    }

    // Read the files without the lock: producers keep appending.
    std::vector<Record> out;
    std::vector<Handed> handed;
    uint64_t samples = 0, payload_bytes = 0;
    bool damaged = false, damaged_header_ok = false;
    Header damaged_header;
    Pos pos = NormalizeInView(view, start_pos);
    while (pos < view.end) {
      const auto& [seg, seg_size] = view.segs.at(pos.seg);
      char hb[kRecordHeaderBytes];
      Header h;
      const bool header_ok =
          pos.off + kRecordHeaderBytes <= seg_size &&
          PReadFull(seg->fd, hb, sizeof hb, pos.off) ==
              static_cast<ssize_t>(sizeof hb) &&
          DecodeHeader(hb, &h) &&
          pos.off + kRecordHeaderBytes + h.length <= seg_size;
      if (!header_ok) {
        damaged = true;
        break;
      }
      if (!out.empty() && (samples + h.samples > max_samples ||
                           payload_bytes + h.length > kMaxReadPayloadBytes)) {
        break;
      }
      Record r;
      r.payload.resize(h.length);
      if (PReadFull(seg->fd, r.payload.data(), h.length,
                    pos.off + kRecordHeaderBytes) !=
              static_cast<ssize_t>(h.length) ||
          Crc32c(r.payload) != h.payload_crc) {
        damaged = true;
        damaged_header_ok = true;
        damaged_header = h;
        break;
      }
      r.compressed = h.compressed;
      r.samples = h.samples;
      r.series = h.series;
      r.enqueue_unix_nanos = h.enqueue_unix_nanos;
      samples += h.samples;
      payload_bytes += h.length;
      out.push_back(std::move(r));
      const uint64_t rec_bytes = kRecordHeaderBytes + h.length;
      handed.push_back(
          Handed{Pos{pos.seg, pos.off + rec_bytes}, rec_bytes, h.samples});
      pos = NormalizeInView(view, Pos{pos.seg, pos.off + rec_bytes});
    }

    std::unique_lock<std::mutex> lock(mu_);
    if (damaged && out.empty()) {
      // Damage that appeared after open (recovery checked everything then).
      // Skip it, unless a drop moved the head meanwhile, and read again.
      if (head_index_ == start_index) {
        SkipCorruptHead(damaged_header_ok, damaged_header);
      }
      read_begin_index_ = head_index_;
      handed_.clear();
      continue;
    }
    read_begin_index_ = start_index;
    handed_ = std::move(handed);
    return out;
  }
}

absl::Status DiskQueueImpl::Commit(size_t count) {
  bool sync_checkpoint = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (count > handed_.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("Commit(", count, ") but the last Read handed out only ",
                       handed_.size(), " uncommitted records"));
    }
    if (count == 0) return absl::OkStatus();
    const uint64_t target = read_begin_index_ + count;
    if (head_index_ < target) {
      // Records dropped meanwhile (drop_oldest) are gone already; remove
      // only what is still queued.
      for (uint64_t i = head_index_ - read_begin_index_; i < count; ++i) {
        bytes_ -= std::min(bytes_, handed_[i].bytes);
        samples_ -= std::min<uint64_t>(samples_, handed_[i].samples);
      }
      // Forward only: a damaged region skipped meanwhile may lie beyond.
      head_ = std::max(head_, Normalize(handed_[count - 1].end));
      head_index_ = target;
      checkpoint_dirty_ = true;
      HeadChanged();
      sync_checkpoint = opts_.checkpoint_interval <= absl::ZeroDuration();
    }
    handed_.erase(handed_.begin(), handed_.begin() + count);
    read_begin_index_ = target;
  }
  if (sync_checkpoint) return WriteCheckpoint(false);
  return absl::OkStatus();
}

Stats DiskQueueImpl::GetStats() const {
  std::unique_lock<std::mutex> lock(mu_);
  Stats s;
  s.bytes = bytes_;
  s.records = tail_index_ - head_index_;
  s.samples = samples_;
  s.oldest_enqueue_unix_nanos = head_enqueue_;
  s.segments = segs_.size();
  for (const auto& [seq, size] : sizes_) s.disk_bytes += size;
  s.disk_bytes += write_size_;
  s.fsyncs = fsyncs_;
  s.fsync_seconds = fsync_seconds_;
  s.checkpoints = checkpoints_;
  s.corrupt_records = corrupt_records_;
  s.corrupt_bytes = corrupt_bytes_;
  s.corrupt_samples = corrupt_samples_;
  s.truncated_bytes = report_.bytes_truncated;
  s.dropped_records = dropped_records_;
  s.dropped_samples = dropped_samples_;
  return s;
}

absl::Status DiskQueueImpl::WriteCheckpoint(bool force) {
  std::lock_guard<std::mutex> ckpt_lock(ckpt_mu_);
  Pos pos;
  {
    std::unique_lock<std::mutex> lock(mu_);
    pos = head_;
    checkpoint_dirty_ = false;
  }
  if (force || !ckpt_valid_ || pos != ckpt_written_) {
    char buf[kCheckpointBytes];
    std::memcpy(buf, kCheckpointMagic, 8);
    Put64(buf + 8, pos.seg);
    Put64(buf + 16, pos.off);
    Put32(buf + 24, Crc32c(buf, 24));
    const std::string tmp = absl::StrCat(dir_, "/", kCheckpointTmpName);
    const std::string final_path = absl::StrCat(dir_, "/", kCheckpointName);
    absl::Status st;
    int fd =
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      st = ErrnoStatus(errno, "create", tmp);
    } else {
      if (!PWriteAll(fd, buf, sizeof buf, 0)) {
        st = ErrnoStatus(errno, "write", tmp);
      } else if (::fdatasync(fd) != 0) {
        st = ErrnoStatus(errno, "fdatasync", tmp);
      }
      ::close(fd);
    }
    if (st.ok() && ::rename(tmp.c_str(), final_path.c_str()) != 0) {
      st = ErrnoStatus(errno, "rename to", final_path);
    }
    if (st.ok()) st = SyncDir(dir_fd_, dir_);
    if (!st.ok()) {
      std::unique_lock<std::mutex> lock(mu_);
      checkpoint_dirty_ = true;  // try again later
      return st;
    }
    ckpt_written_ = pos;
    ckpt_valid_ = true;
    std::unique_lock<std::mutex> lock(mu_);
    ++checkpoints_;
  }
  // The durable read position is past every segment before pos.seg.
  std::vector<std::shared_ptr<Segment>> dead;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (!segs_.empty() && segs_.begin()->first < ckpt_written_.seg &&
           segs_.begin()->second != write_seg_) {
      dead.push_back(segs_.begin()->second);
      sizes_.erase(segs_.begin()->first);
      segs_.erase(segs_.begin());
    }
    holes_.erase(holes_.begin(), holes_.lower_bound(Pos{ckpt_written_.seg, 0}));
  }
  for (const auto& seg : dead) ::unlink(seg->path.c_str());
  return absl::OkStatus();
}

absl::Status DiskQueueImpl::Flush() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (durable_lsn_ < written_lsn_) {
      absl::Status st = SyncUpTo(lock, written_lsn_);
      if (!st.ok()) return st;
    }
  }
  return WriteCheckpoint(false);
}

void DiskQueueImpl::Background() {
  const bool interval_sync = opts_.fsync == FsyncPolicy::kInterval;
  absl::Duration tick = absl::Seconds(1);
  if (interval_sync) tick = std::min(tick, opts_.fsync_interval);
  if (opts_.checkpoint_interval > absl::ZeroDuration()) {
    tick = std::min(tick, opts_.checkpoint_interval);
  }
  tick = std::max(tick, absl::Milliseconds(1));
  absl::Time next_sync = absl::Now() + opts_.fsync_interval;
  absl::Time next_ckpt = absl::Now() + opts_.checkpoint_interval;
  for (;;) {
    bool do_sync = false, do_ckpt = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      bg_cv_.wait_for(lock, absl::ToChronoNanoseconds(tick),
                      [this] { return stopping_ || sync_requested_; });
      if (stopping_) return;
      if (sync_requested_) {
        sync_requested_ = false;
        (void)SyncUpTo(lock, written_lsn_);
      }
      const absl::Time now = absl::Now();
      if (interval_sync && now >= next_sync) {
        next_sync = now + opts_.fsync_interval;
        do_sync = durable_lsn_ < written_lsn_;
      }
      if (now >= next_ckpt) {
        next_ckpt = now + opts_.checkpoint_interval;
        do_ckpt = checkpoint_dirty_;
      }
      if (do_sync) (void)SyncUpTo(lock, written_lsn_);
    }
    if (do_ckpt) (void)WriteCheckpoint(false);
  }
}

absl::Status DiskQueueImpl::Open() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("create queue directory ", dir_, ": ", ec.message()));
  }
  dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return ErrnoStatus(errno, "open directory", dir_);
  const std::string lock_path = absl::StrCat(dir_, "/", kLockName);
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return ErrnoStatus(errno, "open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "queue directory ", dir_, " is in use by another queue"));
    }
    return ErrnoStatus(errno, "lock", lock_path);
  }
  absl::Status st = Recover();
  if (!st.ok()) return st;
  // Persist the recovered position (and delete consumed segments) before
  // anything new is appended.
  st = WriteCheckpoint(true);
  if (!st.ok()) return st;
  opened_ = true;
  bg_ = std::thread([this] { Background(); });
  return absl::OkStatus();
}

absl::Status DiskQueueImpl::Recover() {
  const std::string tmp = absl::StrCat(dir_, "/", kCheckpointTmpName);
  ::unlink(tmp.c_str());

  // Segment files, oldest first.
  std::vector<uint64_t> seqs;
  {
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) return ErrnoStatus(errno, "list", dir_);
    while (dirent* e = ::readdir(d)) {
      uint64_t seq;
      if (ParseSegmentName(e->d_name, &seq)) seqs.push_back(seq);
    }
    ::closedir(d);
  }
  std::sort(seqs.begin(), seqs.end());

  // The checkpoint, if any and intact.
  std::optional<Pos> ckpt;
  {
    const std::string path = absl::StrCat(dir_, "/", kCheckpointName);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      report_.checkpoint_found = true;
      char buf[kCheckpointBytes + 1];
      const ssize_t n = PReadFull(fd, buf, sizeof buf, 0);
      ::close(fd);
      if (n == static_cast<ssize_t>(kCheckpointBytes) &&
          std::memcmp(buf, kCheckpointMagic, 8) == 0 &&
          Get32(buf + 24) == Crc32c(buf, 24)) {
        ckpt = Pos{Get64(buf + 8), Get64(buf + 16)};
      } else {
        report_.checkpoint_corrupt = true;
        Note(
            "checkpoint file is damaged; replaying from the oldest segment "
            "(already sent records may be sent again)");
      }
    } else if (errno != ENOENT) {
      return ErrnoStatus(errno, "open", path);
    }
  }

  uint64_t max_seq = 0;
  Pos start{seqs.empty() ? 0 : seqs.front(), 0};
  if (ckpt.has_value()) {
    max_seq = ckpt->seg;
    start = *ckpt;
  }
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const uint64_t seq = seqs[i];
    max_seq = std::max(max_seq, seq);
    const std::string path = absl::StrCat(dir_, "/", SegmentName(seq));
    if (seq < start.seg) {
      // Consumed before the crash; its deletion may not have happened.
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "delete consumed segment", path);
      }
      ++report_.segments_deleted;
      continue;
    }
    auto seg = std::make_shared<Segment>();
    seg->seq = seq;
    seg->path = path;
    seg->fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (seg->fd < 0) return ErrnoStatus(errno, "open segment", path);
    struct stat sb;
    if (::fstat(seg->fd, &sb) != 0) return ErrnoStatus(errno, "stat", path);
    uint64_t size = static_cast<uint64_t>(sb.st_size);
    const bool last = i + 1 == seqs.size();
    uint64_t off = seq == start.seg ? std::min(start.off, size) : 0;
    Scanner s(seg->fd, size);
    while (off < size) {
      Header h;
      const Probe p = ProbeRecord(s, off, &h);
      if (s.error() != 0) return ErrnoStatus(s.error(), "read", path);
      if (p == Probe::kOk) {
        const uint64_t n = kRecordHeaderBytes + h.length;
        ++report_.records_recovered;
        report_.samples_recovered += h.samples;
        report_.bytes_recovered += n;
        off += n;
        continue;
      }
      uint64_t next;
      const char* what;
      if (p == Probe::kBadPayload) {
        next = off + kRecordHeaderBytes + h.length;
        what = "payload checksum mismatch";
      } else if (p == Probe::kTorn) {
        next = size;
        what = "record runs past the end of the file";
      } else {
        next = FindNextValid(s, off + 1);
        what = "bad record header";
      }
      if (last && next == size) {
        // The tail of the newest segment: what an interrupted write leaves.
        if (::ftruncate(seg->fd, static_cast<off_t>(off)) != 0 ||
            ::fdatasync(seg->fd) != 0) {
          return ErrnoStatus(errno, "truncate torn tail of", path);
        }
        report_.bytes_truncated += size - off;
        Note(absl::StrCat(PosString(Pos{seq, off}), ": ", what, "; truncated ",
                          size - off, " bytes of torn or damaged tail"));
        size = off;
        break;
      }
      ++report_.corrupt_records_skipped;
      report_.corrupt_bytes_skipped += next - off;
      if (p == Probe::kBadPayload) report_.corrupt_samples_lost += h.samples;
      Note(absl::StrCat(
          PosString(Pos{seq, off}), ": ", what, "; skipped ", next - off,
          " bytes to ",
          next == size
              ? std::string("the end of the segment")
              : absl::StrCat("the next valid record at offset ", next)));
      holes_[Pos{seq, off}] = next;
      off = next;
    }
    sizes_[seq] = size;
    segs_[seq] = std::move(seg);
  }
  report_.segments = segs_.size();

  // Always append to a fresh segment numbered above everything seen.
  absl::Status st = CreateSegment(max_seq + 1, true);
  if (!st.ok()) return st;
  corrupt_records_ = report_.corrupt_records_skipped;
  corrupt_bytes_ = report_.corrupt_bytes_skipped;
  corrupt_samples_ = report_.corrupt_samples_lost;
  bytes_ = report_.bytes_recovered;
  samples_ = report_.samples_recovered;
  tail_index_ = report_.records_recovered;
  head_index_ = 0;
  // A checkpoint naming a deleted segment means that segment was consumed;
  // Normalize() moves on to the next one.
  head_ = Normalize(Pos{start.seg, std::min(start.off, SizeOf(start.seg))});
  HeadChanged();
  return absl::OkStatus();
}

}  // namespace

std::string RecoveryReport::Summary() const {
  std::string s = absl::StrCat("recovered ", records_recovered, " records (",
                               samples_recovered, " samples, ", bytes_recovered,
                               " bytes) in ", segments, " segments");
  if (segments_deleted > 0) {
    absl::StrAppend(&s, "; deleted ", segments_deleted, " consumed segments");
  }
  if (corrupt_records_skipped > 0) {
    absl::StrAppend(&s, "; skipped ", corrupt_records_skipped,
                    " damaged records (", corrupt_bytes_skipped, " bytes, ",
                    corrupt_samples_lost, " samples known lost)");
  }
  if (bytes_truncated > 0) {
    absl::StrAppend(&s, "; truncated ", bytes_truncated, " bytes of torn tail");
  }
  if (checkpoint_corrupt) {
    absl::StrAppend(&s,
                    "; checkpoint damaged, replayed from the oldest segment");
  }
  return s;
}

absl::StatusOr<std::unique_ptr<DiskQueue>> OpenDiskQueue(
    const DiskQueueOptions& options) {
  if (options.directory.empty()) {
    return absl::InvalidArgumentError("disk queue directory is empty");
  }
  if (options.max_bytes == 0) {
    return absl::InvalidArgumentError("disk queue max_bytes must be positive");
  }
  if (options.segment_bytes < kRecordHeaderBytes) {
    return absl::InvalidArgumentError("disk queue segment_bytes is too small");
  }
  if (options.fsync == FsyncPolicy::kInterval &&
      options.fsync_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "disk queue fsync_interval must be positive");
  }
  auto q = std::make_unique<DiskQueueImpl>(options);
  absl::Status st = q->Open();
  if (!st.ok()) return st;
  return std::unique_ptr<DiskQueue>(std::move(q));
}

bool IsQueueDirectory(const std::string& dir) {
  // "checkpoint" is a common file name: only ours (by its magic) counts.
  auto is_our_checkpoint = [](const std::filesystem::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[sizeof kCheckpointMagic];
    const bool ok =
        PReadFull(fd, buf, sizeof buf, 0) == static_cast<ssize_t>(sizeof buf) &&
        std::memcmp(buf, kCheckpointMagic, sizeof buf) == 0;
    ::close(fd);
    return ok;
  };
  auto holds_queue_files = [&](const std::filesystem::path& d) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(d, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      uint64_t seq;
      if (ParseSegmentName(name, &seq)) return true;
      if (name == kCheckpointName && is_our_checkpoint(it->path())) return true;
    }
    return false;
  };
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  if (holds_queue_files(dir)) return true;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2) && holds_queue_files(it->path())) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> FindOrphanQueueDirs(
    const std::string& storage_root, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(storage_root, ec)) return out;
  std::filesystem::directory_iterator it(storage_root, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("list ", storage_root, ": ", ec.message()));
  }
  for (std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) {
      return absl::InternalError(
          absl::StrCat("list ", storage_root, ": ", ec.message()));
    }
    std::error_code ec2;
    if (!it->is_directory(ec2)) continue;
    const std::string name = it->path().filename().string();
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    if (IsQueueDirectory(it->path().string()))
      out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace promrelay::queue
