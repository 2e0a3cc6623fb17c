// Synthetic Starform remote_write traffic for benchmarks and load tests: the
// series a customer cluster's agents push (platform jobs that go to Grafana
// Cloud without tenant identifiers, customer jobs that go to VictoriaMetrics
// intact), encoded as snappy-compressed RW1 WriteRequests.
//
// The set of distinct series is fixed (default 100k); requests rotate through
// it in blocks of `series_per_request`, and each full pass ("round") is one
// scrape interval later, the way agents resend every series every scrape.
#ifndef PROMRELAY_BENCH_STARFORM_GEN_H_
#define PROMRELAY_BENCH_STARFORM_GEN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace promrelay::bench {

// The Starform split (DESIGN.md): these jobs are platform series.
inline constexpr std::string_view kPlatformJobs[] = {
    "shuttle", "node-exporter", "kube-state-metrics", "envoy-self"};
// Dropped from platform series before they leave the cluster.
inline constexpr std::string_view kTenantLabels[] = {"project_id", "service_id",
                                                     "workspace_id"};

struct GenOptions {
  uint64_t distinct_series = 100000;
  uint32_t series_per_request = 2000;
  uint32_t rounds = 4;  // pre-generated scrape rounds
  int64_t start_timestamp_ms = 1700000000000;
  int64_t scrape_interval_ms = 15000;
  uint64_t seed = 1;
};

// What one destination of the Starform split should receive.
struct Expectation {
  uint64_t series = 0;
  uint64_t samples = 0;
  uint64_t hash = 0;  // sum of SampleHash over the samples (series_hash.h)
  // Platform series that carried a tenant label before the labeldrop.
  uint64_t tenant_labelled = 0;

  Expectation& operator+=(const Expectation& o) {
    series += o.series;
    samples += o.samples;
    hash += o.hash;
    tenant_labelled += o.tenant_labelled;
    return *this;
  }
};

struct Payload {
  std::string compressed;  // snappy block of `raw`
  std::string raw;         // the uncompressed WriteRequest (kept on request)
  uint32_t series = 0;
  uint32_t raw_size = 0;
  Expectation platform;  // after keep(job) + labeldrop(tenant labels)
  Expectation customer;  // after drop(job), labels intact
  Expectation all;       // the request as sent
};

// One generated series.
struct GenSeries {
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by name
  bool platform = false;
  bool counter = true;
  double base = 0;
  double step = 0;  // per round: counter increase or gauge swing
};

class StarformGenerator {
 public:
  explicit StarformGenerator(const GenOptions& options);

  const GenOptions& options() const { return opts_; }
  uint64_t num_series() const { return opts_.distinct_series; }
  // Requests per round (the last block may be short).
  uint64_t blocks_per_round() const;
  uint64_t num_payloads() const { return blocks_per_round() * opts_.rounds; }

  // Series number `i` (0 <= i < distinct_series); deterministic in i and seed.
  GenSeries MakeSeries(uint64_t i) const;
  // The sample value of series `s` in scrape round `round`.
  static double Value(const GenSeries& s, uint64_t round);

  // Builds payload number `k`: block k % blocks_per_round() of round
  // k / blocks_per_round(). Keeps the uncompressed bytes if `keep_raw`.
  // Call Prepare() first.
  Payload Build(uint64_t k, bool keep_raw) const;
  // Generates and encodes the series once (labels encoding and hashes).
  void Prepare();

 private:
  struct Prepared {
    std::string label_bytes;     // encoded Label fields (field 1 of TimeSeries)
    uint64_t full_hash = 0;      // labels hash with every label
    uint64_t platform_hash = 0;  // labels hash without tenant labels
    bool platform = false;
    bool tenant_labelled = false;
    bool counter = true;
    double base = 0, step = 0;
  };
  Prepared PrepareOne(uint64_t i) const;

  GenOptions opts_;
  std::vector<Prepared> prepared_;
};

// Labels hash as the sink computes it: over sorted (name, value) pairs.
uint64_t LabelsHash(const std::vector<std::pair<std::string, std::string>>& l);

// Protobuf building blocks, shared with tests.
void AppendVarint(std::string* out, uint64_t v);
size_t VarintSize(uint64_t v);

}  // namespace promrelay::bench

#endif  // PROMRELAY_BENCH_STARFORM_GEN_H_
