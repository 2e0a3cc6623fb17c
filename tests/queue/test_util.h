// Helpers shared by the queue tests: temp directories, records, queues of
// every kind behind one factory so interface tests run against all of them.
#ifndef PROMRELAY_TESTS_QUEUE_TEST_UTIL_H_
#define PROMRELAY_TESTS_QUEUE_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/queue/queue.h"

namespace promrelay::queue::testing {

// A fresh directory under /tmp, removed with everything in it on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Record MakeRecord(const std::string& payload, uint32_t samples,
                  int64_t enqueue_unix_nanos = 0);
std::vector<Record> One(Record r);
std::vector<std::string> Payloads(const std::vector<Record>& records);

enum class Kind { kMemory, kDiskAlways, kDiskInterval, kDiskNever };
const char* KindName(Kind kind);
// The kinds the interface tests run against.
std::vector<Kind> AllKinds();

// Opens a queue of `kind`; disk kinds live in `dir` (created if needed).
std::unique_ptr<Queue> MakeQueue(Kind kind, const std::string& dir,
                                 uint64_t max_bytes, OnFull on_full);
// What one record with a payload of `payload_bytes` counts against
// max_bytes in a queue of `kind`.
uint64_t RecordCost(Kind kind, uint64_t payload_bytes);

// Every file under `dir` (recursively) as path -> contents.
std::vector<std::string> ListDir(const std::string& dir);
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents);

}  // namespace promrelay::queue::testing

#endif  // PROMRELAY_TESTS_QUEUE_TEST_UTIL_H_
