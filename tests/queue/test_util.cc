#include "tests/queue/test_util.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "proxy/queue/disk_queue.h"

namespace promrelay::queue::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/promrelay-queue-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Record MakeRecord(const std::string& payload, uint32_t samples,
                  int64_t enqueue_unix_nanos) {
  Record r;
  r.payload = payload;
  r.samples = samples;
  r.series = samples;
  r.enqueue_unix_nanos = enqueue_unix_nanos;
  return r;
}

std::vector<Record> One(Record r) {
  std::vector<Record> v;
  v.push_back(std::move(r));
  return v;
}

std::vector<std::string> Payloads(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(r.payload);
  return out;
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kMemory:
      return "memory";
    case Kind::kDiskAlways:
      return "disk/fsync=always";
    case Kind::kDiskInterval:
      return "disk/fsync=interval";
    case Kind::kDiskNever:
      return "disk/fsync=never";
  }
  return "?";
}

std::vector<Kind> AllKinds() {
  return {Kind::kMemory, Kind::kDiskAlways, Kind::kDiskInterval,
          Kind::kDiskNever};
}

std::unique_ptr<Queue> MakeQueue(Kind kind, const std::string& dir,
                                 uint64_t max_bytes, OnFull on_full) {
  switch (kind) {
    case Kind::kMemory:
      return NewMemoryQueue(max_bytes, on_full);
    default:
      break;
  }
  DiskQueueOptions o;
  o.directory = dir;
  o.max_bytes = max_bytes;
  o.on_full = on_full;
  o.fsync = kind == Kind::kDiskAlways     ? FsyncPolicy::kAlways
            : kind == Kind::kDiskInterval ? FsyncPolicy::kInterval
                                          : FsyncPolicy::kNever;
  o.fsync_interval = absl::Milliseconds(5);
  // Small segments and frequent checkpoints so the contract tests also
  // exercise rotation and segment deletion racing with the consumer.
  o.segment_bytes = 8 << 10;
  o.checkpoint_interval = absl::Milliseconds(3);
  auto q = OpenDiskQueue(o);
  if (!q.ok()) throw std::runtime_error(q.status().ToString());
  return std::move(*q);
}

uint64_t RecordCost(Kind kind, uint64_t payload_bytes) {
  return kind == Kind::kMemory ? payload_bytes
                               : payload_bytes + kRecordHeaderBytes;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    out.push_back(std::filesystem::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

}  // namespace promrelay::queue::testing
