// Counts and fingerprints what a remote_write request carries, for the
// blackhole sink: an independent, minimal RW1 reader (not the proxy's codec,
// so the benchmark checks the proxy rather than itself).
#ifndef PROMRELAY_BENCH_RW_SCAN_H_
#define PROMRELAY_BENCH_RW_SCAN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace promrelay::bench {

struct ScanResult {
  uint64_t series = 0;
  uint64_t samples = 0;
  uint64_t histograms = 0;
  uint64_t exemplars = 0;
  uint64_t metadata = 0;
  uint64_t labels = 0;
  uint64_t hash = 0;  // sum of SampleHash over float samples
  // Series carrying any label named in ScanOptions::watch_labels.
  uint64_t watched_label_series = 0;
  uint64_t unsorted_series = 0;  // labels not in name order (allowed, noted)
};

struct ScanOptions {
  std::vector<std::string> watch_labels;
};

// Scans an uncompressed RW1 WriteRequest. Returns false with *error on a
// malformed message; *result then holds partial counts.
bool ScanWriteRequest(std::string_view buf, const ScanOptions& options,
                      ScanResult* result, std::string* error);

}  // namespace promrelay::bench

#endif  // PROMRELAY_BENCH_RW_SCAN_H_
