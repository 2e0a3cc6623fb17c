// Disk queue tests: durability across reopen and crashes, recovery from
// torn and damaged files, segments, checkpoints, group commit.
#include "proxy/queue/disk_queue.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proxy/queue/crc32c.h"
#include "tests/queue/test_util.h"

namespace promrelay::queue {
namespace {

namespace fs = std::filesystem;
using testing::MakeRecord;
using testing::One;
using testing::Payloads;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

DiskQueueOptions Opts(const std::string& dir) {
  DiskQueueOptions o;
  o.directory = dir;
  o.fsync = FsyncPolicy::kNever;  // durability across a real crash is tested
                                  // with fork + SIGKILL below
  o.checkpoint_interval = absl::ZeroDuration();
  return o;
}

std::unique_ptr<DiskQueue> Open(const DiskQueueOptions& o) {
  auto q = OpenDiskQueue(o);
  INFO(q.status().ToString());
  REQUIRE(q.ok());
  return std::move(*q);
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void CopyDir(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.path().filename() == "LOCK") continue;
    fs::copy_file(e.path(), fs::path(to) / e.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
}

std::vector<std::string> ReadAll(Queue& q) {
  auto r = q.Read(1u << 30, absl::ZeroDuration(), absl::ZeroDuration());
  REQUIRE(r.ok());
  return Payloads(*r);
}

// Fixed width, so every record of one pad has the same size.
std::string Rec(int i, size_t pad = 40) {
  return absl::StrCat(absl::StrFormat("rec%06d:", i),
                      std::string(pad, 'a' + i % 26));
}

std::vector<std::string> Recs(std::initializer_list<int> ids, size_t pad = 40) {
  std::vector<std::string> out;
  for (int i : ids) out.push_back(Rec(i, pad));
  return out;
}

void AppendRecs(Queue& q, int from, int to, size_t pad = 40) {
  for (int i = from; i < to; ++i) {
    REQUIRE(q.Append(One(MakeRecord(Rec(i, pad), i + 1)), nullptr).ok());
  }
}

TEST_CASE("crc32c: known values, hardware and portable agree") {
  CHECK(Crc32c(std::string_view("123456789")) == 0xE3069283u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string inc;
  for (int i = 0; i < 32; ++i) inc.push_back(static_cast<char>(i));
  CHECK(Crc32c(inc) == 0x46DD794Eu);
  std::mt19937 rng(1);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (int i = 0; i < 200; ++i) {
    size_t off = rng() % 100, len = rng() % 4000;
    const uint32_t fast = Crc32c(data.data() + off, len);
    CHECK(fast == Crc32cExtendPortable(0, data.data() + off, len));
    size_t split = len == 0 ? 0 : rng() % len;
    CHECK(Crc32cExtend(Crc32c(data.data() + off, split),
                       data.data() + off + split, len - split) == fast);
  }
  // Large buffers take the three-lane path: every length class around the
  // lane split (multiples of 24 bytes and the odd ones next to them).
  std::string big(300000, '\0');
  for (char& c : big) c = static_cast<char>(rng());
  for (size_t len : {2047, 2048, 2049, 2071, 2072, 2073, 4096, 8191, 8192, 8193,
                     8207, 8208, 8209, 65536, 100003, 131072, 299999, 300000}) {
    INFO("length " << len);
    CHECK(Crc32c(big.data(), len) == Crc32cExtendPortable(0, big.data(), len));
    CHECK(Crc32cExtend(0x12345678u, big.data() + 1, len - 1) ==
          Crc32cExtendPortable(0x12345678u, big.data() + 1, len - 1));
  }
}

TEST_CASE("disk: reopen replays exactly the uncommitted records") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  {
    auto q = Open(o);
    CHECK_FALSE(q->recovery().checkpoint_found);
    AppendRecs(*q, 0, 10);
    auto r = q->Read(1 + 2 + 3 + 4, absl::ZeroDuration(), absl::ZeroDuration());
    REQUIRE(r->size() == 4);
    REQUIRE(q->Commit(4).ok());
    // Handed out but not committed: must come back.
    r = q->Read(5 + 6 + 7, absl::ZeroDuration(), absl::ZeroDuration());
    REQUIRE(r->size() == 3);
  }
  {
    auto q = Open(o);
    const RecoveryReport& rep = q->recovery();
    CHECK(rep.checkpoint_found);
    CHECK_FALSE(rep.damaged());
    CHECK(rep.records_recovered == 6);
    CHECK(rep.samples_recovered == 5 + 6 + 7 + 8 + 9 + 10);
    auto s = q->GetStats();
    CHECK(s.records == 6);
    CHECK(s.samples == rep.samples_recovered);
    CHECK(ReadAll(*q) == Recs({4, 5, 6, 7, 8, 9}));
    // Fields survive.
    auto r = q->Read(1, absl::ZeroDuration(), absl::ZeroDuration());
    CHECK((*r)[0].samples == 5);
    CHECK((*r)[0].series == 5);
    CHECK(s.oldest_enqueue_unix_nanos == (*r)[0].enqueue_unix_nanos);
    REQUIRE(q->Commit(1).ok());
    AppendRecs(*q, 10, 12);
  }
  {
    auto q = Open(o);
    CHECK(ReadAll(*q) == Recs({5, 6, 7, 8, 9, 10, 11}));
  }
}

TEST_CASE("disk: the compressed flag survives a reopen") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  {
    auto q = Open(o);
    for (int i = 0; i < 4; ++i) {
      Record r = MakeRecord(Rec(i), i + 1);
      r.compressed = i % 2 == 1;
      REQUIRE(q->Append(One(std::move(r)), nullptr).ok());
    }
  }
  auto q = Open(o);
  CHECK_FALSE(q->recovery().damaged());
  auto r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
  REQUIRE(r->size() == 4);
  for (int i = 0; i < 4; ++i) {
    INFO("record " << i);
    CHECK((*r)[i].compressed == (i % 2 == 1));
    CHECK((*r)[i].payload == Rec(i));  // the flag is not part of the length
    CHECK((*r)[i].samples == static_cast<uint32_t>(i + 1));
  }
}

TEST_CASE("disk: restarts keep numbering segments upwards, nothing lost") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  int next = 0, committed = 0;
  for (int round = 0; round < 6; ++round) {
    auto q = Open(o);
    CHECK(q->GetStats().records == static_cast<uint64_t>(next - committed));
    AppendRecs(*q, next, next + 3);
    next += 3;
    auto r = q->Read(1, absl::ZeroDuration(), absl::ZeroDuration());
    REQUIRE(Payloads(*r) == Recs({committed}));
    REQUIRE(q->Commit(1).ok());
    ++committed;
  }
  auto q = Open(o);
  std::vector<std::string> want;
  for (int i = committed; i < next; ++i) want.push_back(Rec(i));
  CHECK(ReadAll(*q) == want);
}

TEST_CASE("disk: a second open of the same directory is refused") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  auto q = Open(o);
  auto q2 = OpenDiskQueue(o);
  CHECK(q2.status().code() == absl::StatusCode::kFailedPrecondition);
  q.reset();
  CHECK(OpenDiskQueue(o).ok());
}

TEST_CASE("disk: bad options are rejected") {
  TempDir dir;
  auto o = Opts("");
  CHECK(OpenDiskQueue(o).status().code() == absl::StatusCode::kInvalidArgument);
  o = Opts(dir.Sub("q"));
  o.max_bytes = 0;
  CHECK(OpenDiskQueue(o).status().code() == absl::StatusCode::kInvalidArgument);
  o = Opts(dir.Sub("q"));
  o.fsync = FsyncPolicy::kInterval;
  o.fsync_interval = absl::ZeroDuration();
  CHECK(OpenDiskQueue(o).status().code() == absl::StatusCode::kInvalidArgument);
  WriteFile(dir.Sub("file"), "x");
  o = Opts(dir.Sub("file"));
  CHECK_FALSE(OpenDiskQueue(o).ok());
}

// Writes records 0..4 in one segment and returns that segment's path and
// the offsets where each record starts.
std::pair<std::string, std::vector<uint64_t>> FiveRecords(
    const std::string& qdir) {
  auto q = Open(Opts(qdir));
  std::vector<uint64_t> starts;
  uint64_t off = 0;
  for (int i = 0; i < 5; ++i) {
    starts.push_back(off);
    REQUIRE(q->Append(One(MakeRecord(Rec(i), i + 1)), nullptr).ok());
    off += kRecordHeaderBytes + Rec(i).size();
  }
  starts.push_back(off);
  q.reset();
  auto segs = SegmentFiles(qdir);
  REQUIRE(segs.size() == 1);
  REQUIRE(fs::file_size(segs[0]) == off);
  return {segs[0], starts};
}

TEST_CASE("disk: a torn last record is truncated at every byte offset") {
  TempDir dir;
  auto [seg, starts] = FiveRecords(dir.Sub("orig"));
  const std::string seg_name = fs::path(seg).filename();
  const uint64_t last = starts[4], end = starts[5];
  for (uint64_t cut = last; cut < end; ++cut) {
    INFO("cut at " << cut);
    const std::string qdir = dir.Sub(absl::StrCat("cut", cut));
    CopyDir(dir.Sub("orig"), qdir);
    fs::resize_file(fs::path(qdir) / seg_name, cut);
    {
      auto q = Open(Opts(qdir));
      const RecoveryReport& rep = q->recovery();
      CHECK(rep.records_recovered == 4);
      CHECK(rep.bytes_truncated == cut - last);
      CHECK(rep.corrupt_records_skipped == 0);
      CHECK(rep.damaged() == (cut > last));
      CHECK(q->GetStats().truncated_bytes == cut - last);
      CHECK(fs::file_size(fs::path(qdir) / seg_name) == last);
      CHECK(ReadAll(*q) == Recs({0, 1, 2, 3}));
      // The queue goes on normally after the repair.
      REQUIRE(q->Append(One(MakeRecord(Rec(9), 1)), nullptr).ok());
    }
    auto q = Open(Opts(qdir));
    CHECK_FALSE(q->recovery().damaged());
    CHECK(ReadAll(*q) == Recs({0, 1, 2, 3, 9}));
    q.reset();
    fs::remove_all(qdir);
  }
}

TEST_CASE("disk: a flipped byte in a middle record costs only that record") {
  TempDir dir;
  auto [seg, starts] = FiveRecords(dir.Sub("orig"));
  const std::string seg_name = fs::path(seg).filename();
  const std::string original = ReadFile(seg);
  for (uint64_t at = starts[2]; at < starts[3]; ++at) {
    INFO("flipped byte at " << at);
    const std::string qdir = dir.Sub(absl::StrCat("flip", at));
    CopyDir(dir.Sub("orig"), qdir);
    std::string bytes = original;
    bytes[at] ^= 0x5a;
    WriteFile((fs::path(qdir) / seg_name).string(), bytes);
    auto q = Open(Opts(qdir));
    const RecoveryReport& rep = q->recovery();
    CHECK(rep.records_recovered == 4);
    CHECK(rep.corrupt_records_skipped == 1);
    CHECK(rep.corrupt_bytes_skipped == starts[3] - starts[2]);
    CHECK(rep.bytes_truncated == 0);
    CHECK_FALSE(rep.messages.empty());
    // Samples are known when only the payload was damaged.
    const bool in_payload = at >= starts[2] + kRecordHeaderBytes;
    CHECK(rep.corrupt_samples_lost == (in_payload ? 3u : 0u));
    auto s = q->GetStats();
    CHECK(s.corrupt_records == 1);
    CHECK(s.records == 4);
    CHECK(s.samples == 1 + 2 + 4 + 5);
    CHECK(ReadAll(*q) == Recs({0, 1, 3, 4}));
    // Consuming past the damage works and the counters end at zero.
    auto r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
    REQUIRE(q->Commit(r->size()).ok());
    CHECK(q->GetStats().records == 0);
    CHECK(q->GetStats().bytes == 0);
    q.reset();
    fs::remove_all(qdir);
  }
}

TEST_CASE("disk: damage in several places, across segments") {
  TempDir dir;
  const std::string qdir = dir.Sub("q");
  auto o = Opts(qdir);
  o.segment_bytes = 400;  // about 4 records of ~90 bytes per segment
  {
    auto q = Open(o);
    AppendRecs(*q, 0, 20, 50);
  }
  auto segs = SegmentFiles(qdir);
  REQUIRE(segs.size() >= 4);
  const uint64_t rec = kRecordHeaderBytes + Rec(0, 50).size();
  const uint64_t per_seg = fs::file_size(segs[0]) / rec;
  REQUIRE(per_seg * rec == fs::file_size(segs[0]));
  // The last record of the first segment (a sealed segment's tail: not
  // truncated, skipped), the magic of the second record of the second
  // segment, and garbage overwriting the middle of the third.
  auto flip = [](const std::string& path, uint64_t at) {
    std::string b = ReadFile(path);
    b[at] ^= 0xff;
    WriteFile(path, b);
  };
  flip(segs[0], (per_seg - 1) * rec + kRecordHeaderBytes + 3);
  flip(segs[1], rec);
  {
    std::string b = ReadFile(segs[2]);
    for (uint64_t i = rec + 10; i < 2 * rec + 20; ++i) b[i] = 'Z';
    WriteFile(segs[2], b);
  }
  std::vector<int> lost = {
      static_cast<int>(per_seg - 1), static_cast<int>(per_seg + 1),
      static_cast<int>(2 * per_seg + 1), static_cast<int>(2 * per_seg + 2)};
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {
    if (std::find(lost.begin(), lost.end(), i) == lost.end()) {
      want.push_back(Rec(i, 50));
    }
  }
  auto q = Open(o);
  const RecoveryReport& rep = q->recovery();
  INFO(rep.Summary());
  CHECK(rep.records_recovered == 16);
  CHECK(rep.corrupt_records_skipped == 3);  // the overwrite is one region
  CHECK(rep.bytes_truncated == 0);
  CHECK(ReadAll(*q) == want);
  // The damage is reported again until it has been consumed.
  q.reset();
  q = Open(o);
  CHECK(q->recovery().corrupt_records_skipped == 3);
  auto r = q->Read(1000, absl::ZeroDuration(), absl::ZeroDuration());
  REQUIRE(q->Commit(r->size()).ok());
  q.reset();
  q = Open(o);
  CHECK_FALSE(q->recovery().damaged());
  CHECK(q->GetStats().records == 0);
}

TEST_CASE("disk: damage that appears after open is skipped at read time") {
  TempDir dir;
  const std::string qdir = dir.Sub("q");
  auto q = Open(Opts(qdir));
  AppendRecs(*q, 0, 5);
  auto segs = SegmentFiles(qdir);
  const std::string seg = segs.back();
  const uint64_t rec = kRecordHeaderBytes + Rec(0).size();
  int fd = ::open(seg.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  SECTION("payload") {
    char c = '!';
    REQUIRE(::pwrite(fd, &c, 1, 2 * rec + kRecordHeaderBytes + 5) == 1);
  }
  SECTION("header") {
    char c = '!';
    REQUIRE(::pwrite(fd, &c, 1, 2 * rec + 1) == 1);
  }
  ::close(fd);
  auto r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
  CHECK(Payloads(*r) == Recs({0, 1}));  // stops before the damage
  REQUIRE(q->Commit(2).ok());
  r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
  CHECK(Payloads(*r) == Recs({3, 4}));
  CHECK(q->GetStats().corrupt_records == 1);
  REQUIRE(q->Commit(2).ok());
  CHECK(q->GetStats().records == 0);
}

TEST_CASE("disk: segments rotate and are deleted once consumed") {
  TempDir dir;
  const std::string qdir = dir.Sub("q");
  auto o = Opts(qdir);
  o.segment_bytes = 1100;
  const size_t pad = 300;  // 342 bytes a record: 3 per segment
  auto q = Open(o);
  AppendRecs(*q, 0, 20, pad);
  auto s = q->GetStats();
  CHECK(s.segments == 7);
  CHECK(SegmentFiles(qdir).size() == 7);
  CHECK(s.disk_bytes == 20 * (kRecordHeaderBytes + Rec(0, pad).size()));
  for (const auto& f : SegmentFiles(qdir)) CHECK(fs::file_size(f) <= 1100);
  // A record larger than a segment still goes in, alone in its segment.
  REQUIRE(q->Append(One(MakeRecord(std::string(3000, 'L'), 1)), nullptr).ok());
  CHECK(q->GetStats().segments == 8);

  auto r = q->Read(1 + 2 + 3 + 4 + 5 + 6 + 7, absl::ZeroDuration(),
                   absl::ZeroDuration());
  REQUIRE(r->size() == 7);
  REQUIRE(q->Commit(7).ok());  // checkpoint_interval 0: synchronous
  // Records 7.. live in the 3rd segment on: the first two are gone.
  CHECK(SegmentFiles(qdir).size() == 6);
  CHECK(q->GetStats().segments == 6);
  r = q->Read(1u << 30, absl::ZeroDuration(), absl::ZeroDuration());
  REQUIRE(r->size() == 14);
  REQUIRE(q->Commit(14).ok());
  // Only the segment being written remains.
  CHECK(SegmentFiles(qdir).size() == 1);
  q.reset();
  q = Open(o);
  CHECK(q->GetStats().records == 0);
  // The empty old write segment is deleted once a new one exists.
  CHECK(SegmentFiles(qdir).size() == 1);
}

TEST_CASE("disk: drop_oldest moves the read position over whole records") {
  TempDir dir;
  const std::string qdir = dir.Sub("q");
  auto o = Opts(qdir);
  o.segment_bytes = 500;
  o.on_full = OnFull::kDropOldest;
  const uint64_t rec = kRecordHeaderBytes + Rec(0).size();
  o.max_bytes = 10 * rec;
  uint64_t dropped = 0;
  {
    auto q = Open(o);
    for (int i = 0; i < 30; ++i) {
      REQUIRE(q->Append(One(MakeRecord(Rec(i), i + 1)), &dropped).ok());
    }
    CHECK(dropped == 20 * 21 / 2);  // samples of records 0..19
    auto s = q->GetStats();
    CHECK(s.records == 10);
    CHECK(s.bytes == 10 * rec);
    CHECK(s.dropped_records == 20);
    REQUIRE(q->Flush().ok());
    CHECK(SegmentFiles(qdir).size() <= 4);  // dropped segments deleted
  }
  auto q = Open(o);
  std::vector<std::string> want;
  for (int i = 20; i < 30; ++i) want.push_back(Rec(i));
  CHECK(ReadAll(*q) == want);
}

TEST_CASE("disk: checkpoint file handling") {
  TempDir dir;
  const std::string qdir = dir.Sub("q");
  const std::string ckpt = qdir + "/checkpoint";
  {
    auto q = Open(Opts(qdir));
    AppendRecs(*q, 0, 6);
    auto r = q->Read(1 + 2, absl::ZeroDuration(), absl::ZeroDuration());
    REQUIRE(r->size() == 2);
    REQUIRE(q->Commit(2).ok());
  }
  REQUIRE(fs::exists(ckpt));
  CHECK_FALSE(fs::exists(qdir + "/checkpoint.tmp"));

  SECTION("a leftover temporary file is ignored and removed") {
    WriteFile(qdir + "/checkpoint.tmp", "garbage from a crash mid-write");
    auto q = Open(Opts(qdir));
    CHECK_FALSE(q->recovery().damaged());
    CHECK(ReadAll(*q) == Recs({2, 3, 4, 5}));
    CHECK_FALSE(fs::exists(qdir + "/checkpoint.tmp"));
  }
  SECTION("a damaged checkpoint replays from the oldest segment") {
    std::string b = ReadFile(ckpt);
    b[12] ^= 1;
    WriteFile(ckpt, b);
    auto q = Open(Opts(qdir));
    CHECK(q->recovery().checkpoint_corrupt);
    CHECK(q->recovery().damaged());
    CHECK(ReadAll(*q) == Recs({0, 1, 2, 3, 4, 5}));  // duplicates, no loss
  }
  SECTION("an empty checkpoint replays from the oldest segment") {
    WriteFile(ckpt, "");
    auto q = Open(Opts(qdir));
    CHECK(q->recovery().checkpoint_corrupt);
    CHECK(ReadAll(*q) == Recs({0, 1, 2, 3, 4, 5}));
  }
  SECTION("a missing checkpoint replays everything") {
    fs::remove(ckpt);
    auto q = Open(Opts(qdir));
    CHECK_FALSE(q->recovery().checkpoint_found);
    CHECK(ReadAll(*q) == Recs({0, 1, 2, 3, 4, 5}));
  }
  SECTION("a checkpoint past the end of lost data hides nothing new") {
    // As after a crash with fsync: interval where the records were sent and
    // committed but their bytes never reached the disk.
    {
      auto q = Open(Opts(qdir));
      AppendRecs(*q, 6, 8);  // into the segment the checkpoint will name
      auto r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(r->size() == 6);
      REQUIRE(q->Commit(r->size()).ok());
    }
    for (const auto& f : SegmentFiles(qdir)) fs::resize_file(f, 0);
    {
      auto q = Open(Opts(qdir));
      CHECK(q->GetStats().records == 0);
      AppendRecs(*q, 10, 12);
    }
    auto q = Open(Opts(qdir));
    CHECK(ReadAll(*q) == Recs({10, 11}));
  }
}

TEST_CASE("disk: checkpoints are batched by checkpoint_interval") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  o.checkpoint_interval = absl::Hours(1);
  auto q = Open(o);
  const uint64_t at_open = q->GetStats().checkpoints;
  AppendRecs(*q, 0, 10);
  for (int i = 0; i < 10; ++i) {
    auto r = q->Read(1, absl::ZeroDuration(), absl::ZeroDuration());
    REQUIRE(q->Commit(1).ok());
  }
  CHECK(q->GetStats().checkpoints == at_open);
  REQUIRE(q->Flush().ok());
  CHECK(q->GetStats().checkpoints == at_open + 1);

  o.checkpoint_interval = absl::Milliseconds(5);
  q.reset();
  q = Open(o);
  const uint64_t base = q->GetStats().checkpoints;
  AppendRecs(*q, 0, 1);
  auto r = q->Read(1, absl::ZeroDuration(), absl::ZeroDuration());
  REQUIRE(q->Commit(1).ok());
  // The background thread persists it without further calls.
  for (int i = 0; i < 2000 && q->GetStats().checkpoints == base; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(q->GetStats().checkpoints == base + 1);
}

TEST_CASE("disk: fsync policies") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  SECTION("always: every lone append waits for its own fdatasync") {
    o.fsync = FsyncPolicy::kAlways;
    std::atomic<int> observed{0};
    o.fsync_observer = [&](absl::Duration d) {
      CHECK(d >= absl::ZeroDuration());
      ++observed;
    };
    auto q = Open(o);
    AppendRecs(*q, 0, 10);
    CHECK(q->GetStats().fsyncs == 10);
    CHECK(observed == 10);
    CHECK(q->GetStats().fsync_seconds > 0);
  }
  SECTION("interval: a background thread syncs") {
    o.fsync = FsyncPolicy::kInterval;
    o.fsync_interval = absl::Milliseconds(10);
    auto q = Open(o);
    AppendRecs(*q, 0, 10);
    for (int i = 0; i < 2000 && q->GetStats().fsyncs == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(q->GetStats().fsyncs >= 1);
    CHECK(q->GetStats().fsyncs <= 10);
  }
  SECTION("never: no fsync until Flush") {
    o.fsync = FsyncPolicy::kNever;
    auto q = Open(o);
    AppendRecs(*q, 0, 10);
    CHECK(q->GetStats().fsyncs == 0);
    REQUIRE(q->Flush().ok());
    CHECK(q->GetStats().fsyncs == 1);
  }
}

TEST_CASE("disk: group commit, 8 appenders with fsync always") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  o.fsync = FsyncPolicy::kAlways;
  o.segment_bytes = 64 << 10;  // rotations in between, too
  // A slow "disk": while one sync is in progress the others queue up.
  o.fsync_observer = [](absl::Duration) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  constexpr int kThreads = 8, kPerThread = 60;
  {
    auto q = Open(o);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto st = q->Append(
              One(MakeRecord(
                  absl::StrCat(t, ":", i, ":", std::string(900, 'g')), 1)),
              nullptr);
          if (!st.ok()) FAIL_CHECK(st.ToString());
        }
      });
    }
    for (auto& th : threads) th.join();
    auto s = q->GetStats();
    INFO("fsyncs " << s.fsyncs << " for " << kThreads * kPerThread
                   << " appends");
    CHECK(s.fsyncs > 0);
    CHECK(s.fsyncs < kThreads * kPerThread);
    CHECK(s.records == kThreads * kPerThread);
  }
  auto q = Open(o);
  auto all = ReadAll(*q);
  REQUIRE(all.size() == kThreads * kPerThread);
  std::vector<int> next(kThreads, 0);
  for (const auto& p : all) {
    int t = std::stoi(p.substr(0, p.find(':')));
    int i = std::stoi(p.substr(p.find(':') + 1));
    CHECK(i == next[t]);
    next[t] = i + 1;
  }
}

TEST_CASE("disk: AppendAsync + WaitDurable across several queues") {
  TempDir dir;
  std::vector<std::unique_ptr<DiskQueue>> qs;
  for (int i = 0; i < 4; ++i) {
    auto o = Opts(dir.Sub(absl::StrCat("q", i)));
    o.fsync = FsyncPolicy::kAlways;
    qs.push_back(Open(o));
  }
  for (int round = 0; round < 20; ++round) {
    std::vector<uint64_t> tokens;
    for (auto& q : qs) {
      auto t = q->AppendAsync(One(MakeRecord(Rec(round), 1)), nullptr);
      REQUIRE(t.ok());
      CHECK(*t > 0);
      tokens.push_back(*t);
    }
    for (size_t i = 0; i < qs.size(); ++i) {
      REQUIRE(qs[i]->WaitDurable(tokens[i]).ok());
    }
  }
  for (auto& q : qs) {
    auto s = q->GetStats();
    CHECK(s.records == 20);
    CHECK(s.fsyncs >= 1);
    CHECK(s.fsyncs <= 20 + 1);
  }
  // Without WaitDurable the background thread still syncs promptly.
  const uint64_t before = qs[0]->GetStats().fsyncs;
  REQUIRE(qs[0]->AppendAsync(One(MakeRecord("x", 1)), nullptr).ok());
  for (int i = 0; i < 2000 && qs[0]->GetStats().fsyncs == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(qs[0]->GetStats().fsyncs > before);
  // Errors are the same as Append's.
  qs[1]->Close();
  CHECK(qs[1]->AppendAsync(One(MakeRecord("x", 1)), nullptr).status().code() ==
        absl::StatusCode::kUnavailable);
  // The memory queue completes in AppendAsync.
  auto mem = NewMemoryQueue(1000, OnFull::kReject);
  auto t = mem->AppendAsync(One(MakeRecord("x", 1)), nullptr);
  REQUIRE(t.ok());
  CHECK(mem->WaitDurable(*t).ok());
  CHECK(mem->GetStats().records == 1);
}

// A child process appends (fsync: always) and consumes, reporting on a pipe
// what was acknowledged; the parent SIGKILLs it mid-flight and checks the
// reopened queue: every acknowledged record is there, in order, intact, and
// nothing uncommitted is missing. Repeated, continuing the same queue.
TEST_CASE("disk: SIGKILL under load loses no acknowledged record") {
  TempDir dir;
  auto o = Opts(dir.Sub("q"));
  o.fsync = FsyncPolicy::kAlways;
  o.segment_bytes = 16 << 10;
  o.checkpoint_interval = absl::Milliseconds(2);
  int next_id = 0;     // the first id the next child appends
  int first_kept = 0;  // the oldest id still queued
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto q = OpenDiskQueue(o);
      if (!q.ok()) ::_exit(3);
      std::atomic<bool> stop{false};
      std::thread consumer([&] {
        while (!stop) {
          // Slower than the producers, so a backlog builds up.
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          auto r = (*q)->Read(3, absl::Milliseconds(1), absl::Milliseconds(5));
          if (!r.ok()) ::_exit(4);
          if (r->empty()) continue;
          // Report how far the reader got before committing it.
          const std::string last = r->back().payload;
          std::string msg = "R" + last.substr(3, last.find(':') - 3) + "\n";
          (void)!::write(fds[1], msg.data(), msg.size());
          if (!(*q)->Commit(r->size()).ok()) ::_exit(5);
        }
      });
      std::vector<std::thread> producers;
      std::atomic<int> id{next_id};
      std::mutex order_mu;  // ids go in in order across the producers
      for (int t = 0; t < 3; ++t) {
        producers.emplace_back([&] {
          for (;;) {
            std::lock_guard<std::mutex> l(order_mu);
            const int i = id++;
            if (!(*q)->Append(One(MakeRecord(Rec(i, 200), 1)), nullptr).ok()) {
              ::_exit(6);
            }
            std::string msg = absl::StrCat("A", i, "\n");
            (void)!::write(fds[1], msg.data(), msg.size());
          }
        });
      }
      for (;;) ::pause();
    }
    ::close(fds[1]);
    int max_acked = -1, max_read = -1;
    std::string buf;
    char chunk[4096];
    while (max_acked < next_id + 300) {
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        const int v = std::stoi(buf.substr(1, nl - 1));
        int& m = buf[0] == 'A' ? max_acked : max_read;
        m = std::max(m, v);
        buf.erase(0, nl + 1);
      }
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    // Everything the child reported before it died.
    for (;;) {
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      const int v = std::stoi(buf.substr(1, nl - 1));
      int& m = buf[0] == 'A' ? max_acked : max_read;
      m = std::max(m, v);
      buf.erase(0, nl + 1);
    }
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(max_acked >= next_id);

    auto q = Open(o);
    INFO(q->recovery().Summary());
    CHECK(q->recovery().corrupt_records_skipped == 0);
    auto all = ReadAll(*q);
    if (all.empty()) {
      // The reader had caught up: it must have been given everything
      // acknowledged, and committed everything written.
      CHECK(max_read >= max_acked);
      next_id = first_kept = max_read + 1;
      continue;
    }
    auto id_of = [](const std::string& p) {
      return std::stoi(p.substr(3, p.find(':') - 3));
    };
    const int first = id_of(all.front());
    // Nothing the reader had not even been given can be gone...
    CHECK(first <= std::max(max_read + 1, first_kept));
    CHECK(first >= first_kept);
    // ...the rest is contiguous and intact...
    for (size_t k = 0; k < all.size(); ++k) {
      REQUIRE(all[k] == Rec(first + static_cast<int>(k), 200));
    }
    // ...and reaches at least the last acknowledged record.
    const int last = first + static_cast<int>(all.size()) - 1;
    CHECK(last >= max_acked);
    first_kept = first;
    next_id = last + 1;
  }
}

TEST_CASE("disk: orphaned queue directories are found, not deleted") {
  TempDir dir;
  const std::string root = dir.Sub("storage");
  CHECK(FindOrphanQueueDirs(root, {"x"})->empty());  // no root yet
  {
    auto q = Open(Opts(root + "/old-destination"));
    AppendRecs(*q, 0, 1);
  }
  { auto q = Open(Opts(root + "/sharded/shard-0")); }
  { auto q = Open(Opts(root + "/victoriametrics")); }
  fs::create_directories(root + "/empty");
  fs::create_directories(root + "/other");
  WriteFile(root + "/other/notes.txt", "not a queue");
  WriteFile(root + "/other/checkpoint", "some other program's checkpoint");
  WriteFile(root + "/stray.seg", "a file, not a directory");

  auto orphans = FindOrphanQueueDirs(root, {"victoriametrics", "grafana"});
  REQUIRE(orphans.ok());
  CHECK(*orphans ==
        std::vector<std::string>{root + "/old-destination", root + "/sharded"});
  CHECK(IsQueueDirectory(root + "/old-destination"));
  CHECK_FALSE(IsQueueDirectory(root + "/empty"));
  CHECK_FALSE(IsQueueDirectory(root + "/missing"));
  CHECK(fs::exists(root + "/old-destination"));
  auto q = Open(Opts(root + "/old-destination"));
  CHECK(q->GetStats().records == 1);
}

}  // namespace
}  // namespace promrelay::queue
