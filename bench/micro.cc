// promrelay-micro: the hot path's pieces on Starform payloads (2000 series a
// request), each reported in ns per series: snappy decompress, RW1 decode,
// relabel (the Starform rules, with and without the regex fast paths),
// encode, snappy compress, the whole chain single-threaded, and (when the
// pipeline library is built) Pipeline::Ingest into discarding queues.
//
// With Google Benchmark (libbenchmark-dev) every benchmark's "sec/series"
// counter is the figure (CPU time; "412n" = 412 ns); --plain (or a build
// without it) runs a chrono loop printing ns/series of wall time.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/starform_gen.h"
#include "proxy/relabel/relabel.h"
#include "proxy/wire/rw1.h"
#include "proxy/wire/snappy.h"

#ifdef PROMRELAY_HAVE_GBENCH
#include <benchmark/benchmark.h>
#endif
#ifdef PROMRELAY_BENCH_HAVE_PIPELINE
#include "proxy/config/config.h"
#include "proxy/pipeline/pipeline.h"
#include "proxy/queue/queue.h"
#endif

namespace promrelay::bench {
namespace {

constexpr char kPlatformJobs[] =
    "shuttle|node-exporter|kube-state-metrics|envoy-self";

struct Fixture {
  std::vector<Payload> payloads;  // one scrape round of 100k series
  relabel::RuleSet platform, customer, platform_re2, customer_re2;
  uint64_t series_per_payload = 0;

  Fixture() {
    GenOptions o;
    o.distinct_series = 100000;
    o.rounds = 1;
    StarformGenerator gen(o);
    gen.Prepare();
    for (uint64_t k = 0; k < gen.num_payloads(); ++k)
      payloads.push_back(gen.Build(k, /*keep_raw=*/true));
    series_per_payload = payloads[0].series;

    relabel::RuleSpec keep, labeldrop, drop;
    keep.source_labels = std::vector<std::string>{"job"};
    keep.regex = kPlatformJobs;
    keep.action = "keep";
    labeldrop.regex = "project_id|service_id|workspace_id";
    labeldrop.action = "labeldrop";
    drop.source_labels = std::vector<std::string>{"job"};
    drop.regex = kPlatformJobs;
    drop.action = "drop";
    std::vector<relabel::RuleSpec> p = {keep, labeldrop}, c = {drop};
    relabel::RuleSet::Options re2_only;
    re2_only.regex_fast_paths = false;
    platform = *relabel::RuleSet::Compile(p, relabel::NameScheme::kUtf8);
    customer = *relabel::RuleSet::Compile(c, relabel::NameScheme::kUtf8);
    platform_re2 =
        *relabel::RuleSet::Compile(p, relabel::NameScheme::kUtf8, re2_only);
    customer_re2 =
        *relabel::RuleSet::Compile(c, relabel::NameScheme::kUtf8, re2_only);
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

// Per-thread state reused across iterations, as the proxy does.
struct Scratch {
  std::string raw, compressed;
  wire::WriteRequestView view;
  wire::WriteRequestEncoder enc_platform, enc_customer;
  relabel::LabelBuilder builder;
  std::vector<relabel::Label> input;
  std::vector<wire::LabelView> out;
  uint64_t sink = 0;
};

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "micro: %s failed\n", what);
    std::exit(1);
  }
}

// Each step processes payload `k` and returns the series it handled.
uint64_t StepSnappyDecompress(Scratch& s, size_t k) {
  const Payload& p = F().payloads[k];
  Check(wire::SnappyDecompress(p.compressed, 64 << 20, &s.raw).ok(),
        "SnappyDecompress");
  return p.series;
}

uint64_t StepDecode(Scratch& s, size_t k) {
  const Payload& p = F().payloads[k];
  Check(s.view.Parse(p.raw).ok(), "Parse");
  return s.view.series().size();
}

// Parse without the label contents (what the pipeline needs for series its
// outcome cache knows).
uint64_t StepDecodeSkeleton(Scratch& s, size_t k) {
  const Payload& p = F().payloads[k];
  Check(s.view.ParseSkeleton(p.raw).ok(), "ParseSkeleton");
  return s.view.series().size();
}

// Relabels every series of an already parsed view through both Starform
// rule sets.
uint64_t RelabelView(Scratch& s, const relabel::RuleSet& platform,
                     const relabel::RuleSet& customer, bool encode) {
  if (encode) {
    s.enc_platform.Clear();
    s.enc_customer.Clear();
  }
  for (const wire::SeriesView& sv : s.view.series()) {
    auto raw = s.view.labels(sv);
    s.input.resize(raw.size());
    for (size_t i = 0; i < raw.size(); ++i)
      s.input[i] = relabel::Label{raw[i].name, raw[i].value};
    for (int d = 0; d < 2; ++d) {
      s.builder.Reset(s.input);
      if (!(d == 0 ? platform : customer).Apply(s.builder)) continue;
      auto result = s.builder.Result();
      s.sink += result.size();
      if (!encode) continue;
      s.out.resize(result.size());
      for (size_t i = 0; i < result.size(); ++i)
        s.out[i] = wire::LabelView{result[i].name, result[i].value};
      (d == 0 ? s.enc_platform : s.enc_customer).AddSeries(s.out, sv);
    }
  }
  return s.view.series().size();
}

uint64_t StepRelabel(Scratch& s, size_t k) {
  Check(s.view.Parse(F().payloads[k].raw).ok(), "Parse");
  return RelabelView(s, F().platform, F().customer, false);
}
uint64_t StepRelabelRe2Only(Scratch& s, size_t k) {
  Check(s.view.Parse(F().payloads[k].raw).ok(), "Parse");
  return RelabelView(s, F().platform_re2, F().customer_re2, false);
}

uint64_t StepEncodeUnchanged(Scratch& s, size_t k) {
  // Re-emits every series with its own labels: the encoder's share alone.
  Check(s.view.Parse(F().payloads[k].raw).ok(), "Parse");
  s.enc_customer.Clear();
  for (const wire::SeriesView& sv : s.view.series())
    s.enc_customer.AddSeries(s.view.labels(sv), sv);
  s.sink += s.enc_customer.bytes().size();
  return s.view.series().size();
}

uint64_t StepSnappyCompress(Scratch& s, size_t k) {
  const Payload& p = F().payloads[k];
  wire::SnappyCompress(p.raw, &s.compressed);
  s.sink += s.compressed.size();
  return p.series;
}

// The whole hot path on one thread: what the proxy must do per request.
uint64_t StepChain(Scratch& s, size_t k) {
  const Payload& p = F().payloads[k];
  Check(wire::SnappyDecompress(p.compressed, 64 << 20, &s.raw).ok(),
        "SnappyDecompress");
  Check(s.view.Parse(s.raw).ok(), "Parse");
  uint64_t n = RelabelView(s, F().platform, F().customer, true);
  wire::SnappyCompress(s.enc_platform.bytes(), &s.compressed);
  s.sink += s.compressed.size();
  wire::SnappyCompress(s.enc_customer.bytes(), &s.compressed);
  s.sink += s.compressed.size();
  return n;
}

#ifdef PROMRELAY_BENCH_HAVE_PIPELINE
// Bytes the pipeline queued (snappy-compressed records), to print the
// compression ratio next to the time.
uint64_t g_queued_bytes = 0;

// A queue that accepts and forgets, so Ingest is measured alone.
class NullQueue : public queue::Queue {
 public:
  absl::Status Append(std::vector<queue::Record> records,
                      uint64_t* dropped) override {
    for (auto& r : records) g_queued_bytes += r.payload.size();
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<queue::Record>> Read(size_t, absl::Duration,
                                                  absl::Duration) override {
    return std::vector<queue::Record>{};
  }
  absl::Status Commit(size_t) override { return absl::OkStatus(); }
  queue::Stats GetStats() const override { return {}; }
  void Close() override {}
};

// --shard-by=a,b,c sets queue_config.shard_by of both destinations ("" =
// every label, as Prometheus shards); unset keeps promrelay's default.
const char* g_shard_by = nullptr;

std::string QueueConfigYaml() {
  if (g_shard_by == nullptr) return "";
  std::string labels;
  for (const char* p = g_shard_by; *p != '\0';) {
    const char* comma = std::strchr(p, ',');
    const size_t n = comma ? static_cast<size_t>(comma - p) : std::strlen(p);
    if (!labels.empty()) labels += ", ";
    labels += "\"" + std::string(p, n) + "\"";
    p += n + (comma ? 1 : 0);
  }
  return "    queue_config: {shard_by: [" + labels + "]}\n";
}

pipeline::Pipeline* ThePipeline() {
  static pipeline::Pipeline* p = [] {
    std::string yaml = std::string(R"(
remote_write:
  - name: grafana-cloud
    url: http://127.0.0.1:1/push
    write_relabel_configs:
      - {source_labels: [job], regex: )") +
                       kPlatformJobs + R"(, action: keep}
      - {regex: project_id|service_id|workspace_id, action: labeldrop}
    forbidden_labels: [project_id, service_id, workspace_id]
)" + QueueConfigYaml() +
                       R"(
  - name: victoriametrics
    url: http://127.0.0.1:1/write
    write_relabel_configs:
      - {source_labels: [job], regex: )" +
                       kPlatformJobs + R"(, action: drop}
)" + QueueConfigYaml();
    std::vector<config::ConfigError> errors;
    auto cfg = config::LoadFromString(yaml, "micro", &errors);
    if (!cfg.ok()) {
      std::fprintf(stderr, "micro: config: %s\n",
                   std::string(cfg.status().message()).c_str());
      for (auto& e : errors)
        std::fprintf(stderr, "  %s\n", e.ToString().c_str());
      std::exit(1);
    }
    auto* pl = new pipeline::Pipeline();
    std::vector<pipeline::DestinationQueues> qs;
    for (const auto& d : (*cfg)->remote_write) {
      pipeline::DestinationQueues q;
      q.name = d.name;
      for (int i = 0; i < 4; ++i)
        q.shards.push_back(std::make_shared<NullQueue>());
      qs.push_back(std::move(q));
    }
    Check(pl->Update(*cfg, std::move(qs)).ok(), "Pipeline::Update");
    return pl;
  }();
  return p;
}

uint64_t StepPipelineIngest(Scratch& s, size_t k) {
  const Payload& p = F().payloads[k];
  pipeline::IngestResult r;
  absl::Status st = ThePipeline()->Ingest(p.compressed, {}, &r);
  if (!st.ok()) {
    std::fprintf(stderr, "micro: Ingest: %s\n",
                 std::string(st.message()).c_str());
    std::exit(1);
  }
  return r.series;
}
#endif

struct Bench {
  const char* name;
  uint64_t (*step)(Scratch&, size_t);
};

const Bench kBenches[] = {
    {"snappy_decompress", StepSnappyDecompress},
    {"decode", StepDecode},
    {"decode_skeleton", StepDecodeSkeleton},
    {"decode+relabel", StepRelabel},
    {"decode+relabel_re2_only", StepRelabelRe2Only},
    {"decode+encode_unchanged", StepEncodeUnchanged},
    {"snappy_compress", StepSnappyCompress},
    {"chain", StepChain},
#ifdef PROMRELAY_BENCH_HAVE_PIPELINE
    {"pipeline_ingest", StepPipelineIngest},
#endif
};

#ifdef PROMRELAY_HAVE_GBENCH
void RunGbench(benchmark::State& state, uint64_t (*step)(Scratch&, size_t)) {
  Scratch s;
  size_t k = 0;
  uint64_t series = 0;
  const size_t n = F().payloads.size();
  for (auto _ : state) {
    series += step(s, k);
    k = (k + 1 == n) ? 0 : k + 1;
  }
  benchmark::DoNotOptimize(s.sink);
  state.SetItemsProcessed(series);
  // CPU seconds per series, printed with an SI prefix ("412n" = 412 ns).
  state.counters["sec/series"] = benchmark::Counter(
      static_cast<double>(series),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
#endif

int PlainMain(double seconds, const std::string& only) {
  std::printf("%-26s %12s %14s\n", "benchmark", "ns/series", "series/s");
  for (const Bench& b : kBenches) {
    if (!only.empty() && only != b.name) continue;
    Scratch s;
    const size_t n = F().payloads.size();
    for (size_t k = 0; k < n; ++k) b.step(s, k);
    uint64_t series = 0;
    size_t k = 0;
    auto t0 = std::chrono::steady_clock::now();
    double el = 0;
    do {
      for (int i = 0; i < 10; ++i) {
        series += b.step(s, k);
        k = (k + 1 == n) ? 0 : k + 1;
      }
      el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
               .count();
    } while (el < seconds);
    std::printf("%-26s %12.1f %14.0f\n", b.name, el * 1e9 / series,
                series / el);
  }
#ifdef PROMRELAY_BENCH_HAVE_PIPELINE
  // One more round of every payload, counting what the pipeline queued.
  Scratch s;
  uint64_t raw = 0;
  g_queued_bytes = 0;
  for (size_t k = 0; k < F().payloads.size(); ++k) {
    StepPipelineIngest(s, k);
    raw += F().payloads[k].raw_size;
  }
  std::printf(
      "pipeline_ingest queued %.1f bytes/series, %.2fx smaller than "
      "the requests' WriteRequests\n",
      static_cast<double>(g_queued_bytes) /
          (F().series_per_payload * F().payloads.size()),
      static_cast<double>(raw) / g_queued_bytes);
#endif
  return 0;
}

}  // namespace
}  // namespace promrelay::bench

int main(int argc, char** argv) {
  using namespace promrelay::bench;
  bool plain = false;
  double seconds = 1.0;
  std::string only;  // --only=NAME: that benchmark alone (plain mode)
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--shard-by=", 11) == 0) {
      g_shard_by = argv[i] + 11;
    }
    if (std::strncmp(argv[i], "--only=", 7) == 0) {
      plain = true;
      only = argv[i] + 7;
    }
    if (std::strcmp(argv[i], "--plain") == 0) plain = true;
    if (std::strncmp(argv[i], "--plain-seconds=", 16) == 0) {
      plain = true;
      seconds = std::atof(argv[i] + 16);
    }
  }
  F();  // generate payloads before timing anything
#ifdef PROMRELAY_HAVE_GBENCH
  if (!plain) {
    for (const Bench& b : kBenches)
      benchmark::RegisterBenchmark(b.name, RunGbench, b.step);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
#endif
  (void)plain;
  return PlainMain(seconds, only);
}
