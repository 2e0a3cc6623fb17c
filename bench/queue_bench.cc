// Disk queue append throughput and latency under concurrent appenders, per
// fsync policy. Built by bench/CMakeLists.txt as promrelay-queue-bench
// (links promrelay_queue only).
// Run: promrelay-queue-bench [--dir DIR] [--seconds S] [--record-bytes N]
//                  [--threads 1,4,16] [--policies always,interval]
// DIR must be on the disk under test (not tmpfs); a fresh subdirectory is
// used per run and removed afterwards. A consumer thread drains the queue
// as a sender would, so segments rotate and are deleted during the run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proxy/queue/disk_queue.h"

namespace {

using promrelay::queue::DiskQueueOptions;
using promrelay::queue::FsyncPolicy;
using promrelay::queue::OpenDiskQueue;
using promrelay::queue::Record;

struct Result {
  double appends_per_sec = 0;
  double mib_per_sec = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  uint64_t appends = 0, fsyncs = 0;
};

Result Run(const std::string& dir, FsyncPolicy policy, int threads,
           size_t record_bytes, double seconds) {
  std::filesystem::remove_all(dir);
  DiskQueueOptions o;
  o.directory = dir;
  o.max_bytes = 8ull << 30;
  o.fsync = policy;
  o.fsync_interval = absl::Seconds(1);
  auto q = OpenDiskQueue(o);
  if (!q.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(),
                 q.status().ToString().c_str());
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop) {
      auto r = (*q)->Read(2000, absl::Milliseconds(5), absl::Milliseconds(50));
      if (!r.ok()) break;
      if (!r->empty()) (void)(*q)->Commit(r->size());
    }
  });
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::thread> ts;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      Record proto;
      proto.payload.assign(record_bytes, static_cast<char>('a' + t % 26));
      proto.samples = 100;
      proto.series = 100;
      while (std::chrono::steady_clock::now() < end) {
        std::vector<Record> batch(1, proto);
        const auto t0 = std::chrono::steady_clock::now();
        absl::Status st = (*q)->Append(std::move(batch), nullptr);
        const auto t1 = std::chrono::steady_clock::now();
        if (!st.ok()) {
          std::fprintf(stderr, "append: %s\n", st.ToString().c_str());
          std::exit(1);
        }
        lat[t].push_back(
            std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    });
  }
  for (auto& th : ts) th.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  stop = true;
  consumer.join();
  Result r;
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1,
                                      static_cast<size_t>(p * all.size()))];
  };
  r.appends = all.size();
  r.appends_per_sec = all.size() / elapsed;
  r.mib_per_sec = r.appends_per_sec * record_bytes / (1 << 20);
  r.p50_us = pct(0.50);
  r.p99_us = pct(0.99);
  r.p999_us = pct(0.999);
  r.fsyncs = (*q)->GetStats().fsyncs;
  q->reset();
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/var/tmp";
  double seconds = 3;
  size_t record_bytes = 20 << 10;
  std::vector<int> threads = {1, 4, 16};
  std::vector<std::string> policies = {"always", "interval"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") {
      dir = next();
    } else if (a == "--seconds") {
      if (!absl::SimpleAtod(next(), &seconds)) return 2;
    } else if (a == "--record-bytes") {
      if (!absl::SimpleAtoi(next(), &record_bytes)) return 2;
    } else if (a == "--threads") {
      threads.clear();
      for (auto s : absl::StrSplit(next(), ',')) {
        int n;
        if (!absl::SimpleAtoi(s, &n) || n < 1) return 2;
        threads.push_back(n);
      }
    } else if (a == "--policies") {
      policies = absl::StrSplit(next(), ',');
    } else {
      std::fprintf(stderr,
                   "usage: queue_bench [--dir DIR] [--seconds S] "
                   "[--record-bytes N] [--threads 1,4,16] "
                   "[--policies always,interval,never]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  const std::string run_dir =
      dir + "/promrelay-queue-bench-" + std::to_string(::getpid());
  std::printf("%-9s %7s %12s %9s %9s %9s %9s %10s\n", "fsync", "threads",
              "appends/s", "MiB/s", "p50_us", "p99_us", "p999_us",
              "appends/fsync");
  for (const std::string& p : policies) {
    FsyncPolicy policy;
    if (p == "always") {
      policy = FsyncPolicy::kAlways;
    } else if (p == "interval") {
      policy = FsyncPolicy::kInterval;
    } else if (p == "never") {
      policy = FsyncPolicy::kNever;
    } else {
      std::fprintf(stderr, "unknown policy %s\n", p.c_str());
      return 2;
    }
    for (int t : threads) {
      Result r = Run(run_dir, policy, t, record_bytes, seconds);
      std::printf("%-9s %7d %12.0f %9.1f %9.0f %9.0f %9.0f %10.1f\n", p.c_str(),
                  t, r.appends_per_sec, r.mib_per_sec, r.p50_us, r.p99_us,
                  r.p999_us,
                  r.fsyncs ? static_cast<double>(r.appends) / r.fsyncs : 0.0);
      std::fflush(stdout);
    }
  }
  return 0;
}
