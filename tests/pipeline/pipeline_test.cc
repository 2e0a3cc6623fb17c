#include "proxy/pipeline/pipeline.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "proxy/metrics/metrics.h"
#include "tests/pipeline/test_util.h"
#include "tests/wire/gen.h"

namespace promrelay::pipeline {
namespace {

using testing::AddSeries;
using testing::Body;
using testing::FakeQueue;
using testing::LabelPairs;
using testing::LabelsOf;
using wire::testing::Bytes;

// A pipeline over FakeQueues, one vector of shards per destination.
struct Fixture {
  explicit Fixture(std::shared_ptr<config::Config> cfg)
      : config(std::move(cfg)) {
    std::vector<DestinationQueues> qs;
    for (const auto& d : config->remote_write) {
      DestinationQueues dq;
      dq.name = d.name;
      for (int i = 0; i < d.queue_config.shards; ++i) {
        auto q = std::make_shared<FakeQueue>();
        fakes[d.name].push_back(q);
        dq.shards.push_back(q);
      }
      dq.shard_capacity_bytes = capacity;
      qs.push_back(std::move(dq));
    }
    pipeline = std::make_unique<Pipeline>(&registry);
    REQUIRE(pipeline->Update(config, std::move(qs)).ok());
  }

  std::vector<prometheus::TimeSeries> Series(const std::string& dest) const {
    std::vector<prometheus::TimeSeries> out;
    for (const auto& q : fakes.at(dest)) {
      auto s = q->Series();
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }
  double Counter(const std::string& name,
                 std::initializer_list<std::string_view> labels = {}) {
    if (name == "promrelay_dropped_samples_total") {
      return registry.AddCounter(name, "", {"destination", "reason"})
          .With(labels)
          .Value();
    }
    if (name == "promrelay_rejected_samples_total") {
      return registry.AddCounter(name, "", {"reason"}).With(labels).Value();
    }
    if (labels.size() == 0)
      return registry.AddCounter(name, "").With({}).Value();
    return registry.AddCounter(name, "", {"destination"}).With(labels).Value();
  }

  double CacheHits() {
    return registry
        .AddCounter("promrelay_series_cache_lookups_total", "", {"result"})
        .With({"hit"})
        .Value();
  }

  uint64_t capacity = 0;
  std::shared_ptr<config::Config> config;
  metrics::Registry registry;
  std::map<std::string, std::vector<std::shared_ptr<FakeQueue>>> fakes;
  std::unique_ptr<Pipeline> pipeline;
};

prometheus::WriteRequest StarformRequest() {
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "shuttle_reconcile_total"},
                   {"instance", "10.0.0.1:9000"},
                   {"job", "shuttle"},
                   {"project_id", "p-123"},
                   {"workspace_id", "w-9"}});
  AddSeries(&req,
            {{"__name__", "node_cpu_seconds_total"},
             {"cpu", "0"},
             {"job", "node-exporter"},
             {"mode", "idle"}},
            2);
  AddSeries(&req,
            {{"__name__", "container_cpu_usage_seconds_total"},
             {"job", "cadvisor"},
             {"project_id", "p-123"},
             {"service_id", "s-1"}},
            3);
  AddSeries(&req, {{"__name__", "envoy_cluster_upstream_rq_total"},
                   {"job", "envoy"},
                   {"service_id", "s-2"}});
  AddSeries(&req, {{"__name__", "kube_pod_info"},
                   {"job", "kube-state-metrics"},
                   {"namespace", "starform"},
                   {"service_id", "s-3"}});
  return req;
}

TEST_CASE("Starform split: platform without tenant ids and customer intact") {
  Fixture f(testing::StarformConfig());
  prometheus::WriteRequest req = StarformRequest();
  IngestResult result;
  REQUIRE(f.pipeline->Ingest(Body(req), {}, &result).ok());
  CHECK(result.series == 5);
  CHECK(result.samples == 8);

  auto platform = f.Series("grafana-cloud");
  REQUIRE(platform.size() == 3);
  std::set<std::string> jobs;
  for (const auto& ts : platform) {
    LabelPairs l = LabelsOf(ts);
    jobs.insert(testing::Get(l, "job"));
    for (const auto& [n, v] : l) {
      CHECK(n != "project_id");
      CHECK(n != "service_id");
      CHECK(n != "workspace_id");
    }
  }
  CHECK(jobs == std::set<std::string>{"shuttle", "node-exporter",
                                      "kube-state-metrics"});
  // Samples survive relabeling untouched.
  CHECK(platform[1].samples_size() == 2);
  CHECK(platform[1].samples(1).timestamp() == 1700000001000);

  auto customer = f.Series("victoriametrics");
  REQUIRE(customer.size() == 2);
  // Unchanged series are re-emitted byte for byte.
  CHECK(customer[0].SerializeAsString() ==
        req.timeseries(2).SerializeAsString());
  CHECK(customer[1].SerializeAsString() ==
        req.timeseries(3).SerializeAsString());

  CHECK(f.Counter("promrelay_received_samples_total") == 8);
  CHECK(f.Counter("promrelay_received_series_total") == 5);
  CHECK(f.Counter("promrelay_relabel_dropped_series_total",
                  {"grafana-cloud"}) == 2);
  CHECK(f.Counter("promrelay_relabel_dropped_series_total",
                  {"victoriametrics"}) == 3);
  CHECK(f.Counter("promrelay_queued_samples_total", {"grafana-cloud"}) == 4);
  CHECK(f.Counter("promrelay_queued_samples_total", {"victoriametrics"}) == 4);
  CHECK(f.Counter("promrelay_queued_series_total", {"victoriametrics"}) == 2);
  CHECK(f.Counter("promrelay_forbidden_label_violations_total",
                  {"grafana-cloud"}) == 0);
}

TEST_CASE("without rules the output is the input byte for byte") {
  auto cfg = std::make_shared<config::Config>();
  config::Destination d;
  d.name = "mirror";
  d.queue_config.shards = 1;
  cfg->remote_write.push_back(std::move(d));
  Fixture f(cfg);
  prometheus::WriteRequest req = StarformRequest();
  auto* md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("shuttle_reconcile_total");
  md->set_help("Reconciles.");
  std::string raw = req.SerializeAsString();
  REQUIRE(f.pipeline->Ingest(testing::Compress(raw)).ok());
  const auto& q = *f.fakes["mirror"][0];
  REQUIRE(q.records.size() == 1);
  CHECK(testing::RawPayload(q.records[0]) == raw);
  CHECK(q.records[0].samples == 8);
  CHECK(q.records[0].series == 5);
}

TEST_CASE("labels a rule sets are re-encoded and samples kept") {
  auto cfg = std::make_shared<config::Config>();
  cfg->relabel_configs =
      testing::Rules({testing::Replace("job", "team", "t-$1")});
  config::Destination d;
  d.name = "only";
  cfg->remote_write.push_back(std::move(d));
  Fixture f(cfg);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "up"}, {"job", "api"}}, 4);
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  auto out = f.Series("only");
  REQUIRE(out.size() == 1);
  CHECK(LabelsOf(out[0]) ==
        LabelPairs{{"__name__", "up"}, {"job", "api"}, {"team", "t-api"}});
  REQUIRE(out[0].samples_size() == 4);
  CHECK(out[0].samples(3).value() == 3.5);
}

TEST_CASE("records hold at most max_samples_per_send samples") {
  auto cfg = std::make_shared<config::Config>();
  config::Destination d;
  d.name = "small";
  d.queue_config.shards = 1;
  d.queue_config.max_samples_per_send = 7;
  cfg->remote_write.push_back(std::move(d));
  Fixture f(cfg);
  prometheus::WriteRequest req;
  for (int i = 0; i < 10; ++i) {
    AddSeries(&req, {{"__name__", "m"}, {"i", std::to_string(i)}}, 3);
  }
  // One series bigger than the limit travels alone.
  AddSeries(&req, {{"__name__", "big"}}, 20);
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  const auto& q = *f.fakes["small"][0];
  uint64_t total = 0;
  for (const auto& r : q.records) {
    if (r.series > 1) CHECK(r.samples <= 7);
    prometheus::WriteRequest got;
    REQUIRE(got.ParseFromString(testing::RawPayload(r)));
    uint32_t samples = 0;
    for (const auto& ts : got.timeseries()) samples += ts.samples_size();
    CHECK(samples == r.samples);
    CHECK(static_cast<uint32_t>(got.timeseries_size()) == r.series);
    total += r.samples;
  }
  CHECK(q.records.size() == 6);  // 2+2+2+2+2 series, then the big one
  CHECK(total == 50);
  auto series = f.Series("small");
  REQUIRE(series.size() == 11);
  for (int i = 0; i < 10; ++i) {
    CHECK(testing::Get(LabelsOf(series[i]), "i") == std::to_string(i));
  }
  CHECK(series[10].samples_size() == 20);
}

TEST_CASE("shard_by: [] shards by a stable hash of all the final labels") {
  // Golden values: the hash must never change between builds or runs, or a
  // disk queue's series would change shard after an upgrade.
  std::vector<relabel::Label> labels = {{"__name__", "up"}, {"job", "api"}};
  const uint64_t golden = 0x3659ffa6f345b596ULL;
  CHECK(StableLabelsHash(absl::MakeConstSpan(labels)) == golden);
  std::vector<relabel::Label> node = {{"__name__", "node_cpu_seconds_total"},
                                      {"cpu", "0"},
                                      {"instance", "10.0.0.1:9100"},
                                      {"job", "node-exporter"},
                                      {"mode", "idle"}};
  CHECK(StableLabelsHash(absl::MakeConstSpan(node)) == 0x99bc1d8446e31134ULL);
  CHECK(StableEncodedLabelsHash("\x0a\x0e\x0a\x08__name__\x12\x02up") ==
        0x31a7255b1a221a28ULL);
  // Every length class (short, 4..16, over 16) depends on every byte.
  for (size_t n = 1; n < 40; ++n) {
    std::string a(n, 'x');
    for (size_t i = 0; i < n; ++i) {
      std::string b = a;
      b[i] = 'y';
      CHECK(StableHashBytes(0, a) != StableHashBytes(0, b));
    }
  }
  std::vector<relabel::Label> split = {{"__name__", "upj"}, {"ob", "api"}};
  CHECK(StableLabelsHash(absl::MakeConstSpan(split)) != golden);
  CHECK(StableHashBytes(0, "") != StableHashBytes(0, std::string(1, '\0')));

  auto cfg = std::make_shared<config::Config>();
  config::Destination d;
  d.name = "sharded";
  d.queue_config.shards = 4;
  d.queue_config.shard_by.clear();
  cfg->remote_write.push_back(std::move(d));
  Fixture a(cfg);
  Fixture b(cfg);
  prometheus::WriteRequest req;
  for (int i = 0; i < 200; ++i) {
    AddSeries(&req, {{"__name__", "m"}, {"i", std::to_string(i)}});
  }
  REQUIRE(a.pipeline->Ingest(Body(req)).ok());
  REQUIRE(b.pipeline->Ingest(Body(req)).ok());
  std::map<std::string, int> shard_of;
  for (int s = 0; s < 4; ++s) {
    auto sa = a.fakes["sharded"][s]->Series();
    auto sb = b.fakes["sharded"][s]->Series();
    CHECK(sa.size() == sb.size());
    CHECK(sa.size() > 20);  // 200 series spread over every shard
    for (const auto& ts : sa) {
      std::string i = testing::Get(LabelsOf(ts), "i");
      CHECK(shard_of.count(i) == 0);
      shard_of[i] = s;
      // Unchanged series are sharded by their encoded label fields.
      prometheus::TimeSeries only_labels;
      *only_labels.mutable_labels() = ts.labels();
      CHECK(StableEncodedLabelsHash(only_labels.SerializeAsString()) % 4 ==
            static_cast<uint64_t>(s));
    }
  }
  CHECK(shard_of.size() == 200);

  // Series whose labels a rule changed are sharded by their final labels.
  auto relabeled = std::make_shared<config::Config>();
  config::Destination r;
  r.name = "relabeled";
  r.queue_config.shards = 4;
  r.queue_config.shard_by.clear();
  r.write_relabel_configs =
      testing::Rules({testing::Replace("i", "copy", "$1")});
  relabeled->remote_write.push_back(std::move(r));
  Fixture c(relabeled);
  REQUIRE(c.pipeline->Ingest(Body(req)).ok());
  size_t seen = 0;
  for (int s = 0; s < 4; ++s) {
    for (const auto& ts : c.fakes["relabeled"][s]->Series()) {
      std::vector<relabel::Label> l;
      for (const auto& x : ts.labels()) l.push_back({x.name(), x.value()});
      REQUIRE(l.size() == 3);
      CHECK(StableLabelsHash(absl::MakeConstSpan(l)) % 4 ==
            static_cast<uint64_t>(s));
      ++seen;
    }
  }
  CHECK(seen == 200);
}

TEST_CASE("by default a series' shard follows its job, instance and name") {
  // Golden values, as for the all-labels hash: a disk queue's series keep
  // their shard across restarts and upgrades.
  const std::vector<std::string> by = {"job", "instance", "__name__"};
  const auto key_hash = [&](const std::vector<relabel::Label>& l) {
    return StableShardKeyHash(absl::MakeConstSpan(l), absl::MakeConstSpan(by));
  };
  const std::vector<relabel::Label> node = {
      {"__name__", "node_cpu_seconds_total"},
      {"cpu", "0"},
      {"instance", "10.0.0.1:9100"},
      {"job", "node-exporter"},
      {"mode", "idle"}};
  CHECK(key_hash(node) == 0x6e3c019e67227229ULL);
  std::vector<relabel::Label> other_mode = node;
  other_mode[4].value = "user";
  CHECK(key_hash(other_mode) == key_hash(node));
  std::vector<relabel::Label> other_instance = node;
  other_instance[2].value = "10.0.0.2:9100";
  CHECK(key_hash(other_instance) != key_hash(node));
  // An absent label differs from an empty one, and from a value that has
  // moved to another of the named labels.
  std::vector<relabel::Label> no_instance = node;
  no_instance.erase(no_instance.begin() + 2);
  std::vector<relabel::Label> empty_instance = node;
  empty_instance[2].value = "";
  CHECK(key_hash(no_instance) != key_hash(empty_instance));
  const std::vector<relabel::Label> a = {{"instance", "x"}};
  const std::vector<relabel::Label> b = {{"job", "x"}};
  CHECK(key_hash(a) != key_hash(b));
  // None of the named labels: the hash of all of them.
  const std::vector<relabel::Label> bare = {{"cpu", "0"}, {"mode", "idle"}};
  CHECK(key_hash(bare) == StableLabelsHash(absl::MakeConstSpan(bare)));

  auto cfg = std::make_shared<config::Config>();
  config::Destination d;
  d.name = "sharded";
  d.queue_config.shards = 4;
  cfg->remote_write.push_back(std::move(d));
  config::Destination r;
  r.name = "relabeled";
  r.queue_config.shards = 4;
  // The shard follows the final labels: here the instance a rule writes.
  r.write_relabel_configs =
      testing::Rules({testing::Replace("target", "instance", "$1")});
  cfg->remote_write.push_back(std::move(r));
  Fixture f(cfg);
  prometheus::WriteRequest req;
  for (int t = 0; t < 40; ++t) {
    for (int m = 0; m < 3; ++m) {
      for (int i = 0; i < 5; ++i) {
        AddSeries(&req, {{"__name__", "metric_" + std::to_string(m)},
                         {"i", std::to_string(i)},
                         {"instance", "host-" + std::to_string(t)},
                         {"job", "node"},
                         {"target", "t" + std::to_string(t)}});
      }
    }
  }
  // No job, instance or name: sharded by all labels, so spread out too.
  for (int i = 0; i < 100; ++i) AddSeries(&req, {{"i", std::to_string(i)}});
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  for (const char* dest : {"sharded", "relabeled"}) {
    INFO(dest);
    std::map<std::string, int> shard_of_key;
    size_t seen = 0, bare = 0;
    for (int s = 0; s < 4; ++s) {
      const auto series = f.fakes[dest][s]->Series();
      CHECK(series.size() > 100);  // 700 series spread over every shard
      for (const auto& ts : series) {
        std::vector<relabel::Label> l;
        for (const auto& x : ts.labels()) l.push_back({x.name(), x.value()});
        CHECK(key_hash(l) % 4 == static_cast<uint64_t>(s));
        ++seen;
        const std::string instance = testing::Get(LabelsOf(ts), "instance");
        if (instance.empty()) {
          ++bare;
          continue;
        }
        // Every series of one target and name in one shard.
        const std::string key =
            instance + "/" + testing::Get(LabelsOf(ts), "__name__");
        auto [it, fresh] = shard_of_key.emplace(key, s);
        CHECK(it->second == s);
      }
    }
    CHECK(seen == 700);
    CHECK(bare == 100);
    CHECK(shard_of_key.size() == 120);
  }
}

TEST_CASE("request limits name the limit and the value") {
  auto cfg = testing::StarformConfig();
  cfg->server.max_series_per_request = 3;
  cfg->server.max_labels_per_series = 4;
  cfg->server.max_label_name_length = 10;
  cfg->server.max_label_value_length = 20;
  Fixture f(cfg);

  SECTION("series per request") {
    prometheus::WriteRequest req;
    for (int i = 0; i < 4; ++i) AddSeries(&req, {{"i", std::to_string(i)}});
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(absl::IsOutOfRange(st));
    CHECK(st.message().find("server.max_series_per_request (3)") !=
          absl::string_view::npos);
    CHECK(st.message().find("4 series") != absl::string_view::npos);
  }
  SECTION("labels per series") {
    prometheus::WriteRequest req;
    AddSeries(&req,
              {{"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}, {"e", "1"}});
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message().find("server.max_labels_per_series (4)") !=
          absl::string_view::npos);
    CHECK(st.message().find("5 labels") != absl::string_view::npos);
  }
  SECTION("label name length") {
    prometheus::WriteRequest req;
    AddSeries(&req, {{"a_very_long_name", "1"}});
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message().find("server.max_label_name_length (10)") !=
          absl::string_view::npos);
    CHECK(st.message().find("16 bytes") != absl::string_view::npos);
  }
  SECTION("label value length") {
    prometheus::WriteRequest req;
    AddSeries(&req, {{"job", std::string(21, 'x')}});
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message().find("server.max_label_value_length (20)") !=
          absl::string_view::npos);
    CHECK(st.message().find("\"job\"") != absl::string_view::npos);
  }
  SECTION("decompressed size") {
    cfg->server.max_decompressed_bytes = 100;
    prometheus::WriteRequest req;
    AddSeries(&req, {{"job", std::string(20, 'x')}}, 50);
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(absl::IsOutOfRange(st));
    CHECK(st.message().find("server.max_decompressed_bytes (100)") !=
          absl::string_view::npos);
  }
  // Nothing reached any queue.
  CHECK(f.Series("grafana-cloud").empty());
  CHECK(f.Series("victoriametrics").empty());
}

TEST_CASE("malformed bodies are InvalidArgument") {
  Fixture f(testing::StarformConfig());
  CHECK(absl::IsInvalidArgument(f.pipeline->Ingest("definitely not snappy")));
  // Valid snappy, invalid protobuf.
  absl::Status st = f.pipeline->Ingest(testing::Compress("\x0a\xff\xff\xff"));
  CHECK(absl::IsInvalidArgument(st));
  CHECK(st.message().find("malformed") != absl::string_view::npos);
  // An empty body is an empty WriteRequest: accepted, nothing queued.
  CHECK(f.pipeline->Ingest(testing::Compress("")).ok());
  CHECK(f.fakes["grafana-cloud"][0]->append_calls == 0);
}

std::vector<std::string> Payloads(const FakeQueue& q) {
  std::vector<std::string> out;
  for (const auto& r : q.records) out.push_back(r.payload);
  return out;
}

// A config with one destination of `shards` shards and these rules.
std::shared_ptr<config::Config> OneDestination(
    const std::string& name, int shards, relabel::RuleSet rules,
    std::vector<std::string> forbidden = {}) {
  auto cfg = std::make_shared<config::Config>();
  config::Destination d;
  d.name = name;
  d.queue_config.shards = shards;
  d.write_relabel_configs = std::move(rules);
  d.forbidden_labels = std::move(forbidden);
  cfg->remote_write.push_back(std::move(d));
  return cfg;
}

// A fake queue that got the same request `rounds` times got the same
// records each time, byte for byte.
void CheckRoundsIdentical(const FakeQueue& q, size_t rounds) {
  const std::vector<std::string> payloads = Payloads(q);
  REQUIRE(payloads.size() % rounds == 0);
  const size_t per_round = payloads.size() / rounds;
  for (size_t round = 1; round < rounds; ++round) {
    for (size_t i = 0; i < per_round; ++i) {
      CHECK(payloads[round * per_round + i] == payloads[i]);
    }
  }
}

TEST_CASE("forbidden-label guard withholds and counts") {
  // A rule that forgets to drop service_id.
  auto cfg = OneDestination("guarded", 1,
                            testing::Rules({testing::LabelDrop("project_id")}),
                            {"project_id", "service_id"});
  Fixture f(cfg);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "a"}, {"project_id", "p"}}, 2);
  AddSeries(&req, {{"__name__", "b"}, {"service_id", "s"}}, 3);
  AddSeries(&req, {{"__name__", "c"}, {"service_id", ""}}, 1);
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  auto out = f.Series("guarded");
  REQUIRE(out.size() == 2);
  CHECK(testing::Get(LabelsOf(out[0]), "__name__") == "a");
  CHECK(testing::Get(LabelsOf(out[0]), "project_id") == "");
  CHECK(testing::Get(LabelsOf(out[1]), "__name__") == "c");
  CHECK(f.Counter("promrelay_forbidden_label_violations_total", {"guarded"}) ==
        1);
  CHECK(f.Counter("promrelay_dropped_samples_total",
                  {"guarded", "forbidden_label"}) == 3);
}

TEST_CASE("guard applies without any rules too") {
  auto cfg = std::make_shared<config::Config>();
  config::Destination d;
  d.name = "guarded";
  d.forbidden_labels = {"workspace_id"};
  cfg->remote_write.push_back(std::move(d));
  Fixture f(cfg);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "a"}, {"workspace_id", "w"}});
  AddSeries(&req, {{"__name__", "b"}});
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  REQUIRE(f.Series("guarded").size() == 1);
  CHECK(f.Counter("promrelay_forbidden_label_violations_total", {"guarded"}) ==
        1);
}

TEST_CASE("global relabel drops and injected labels") {
  auto cfg = std::make_shared<config::Config>();
  cfg->relabel_configs =
      testing::Rules({testing::Drop("__name__", "debug_.*")});
  config::Destination d;
  d.name = "all";
  cfg->remote_write.push_back(std::move(d));
  Fixture f(cfg);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "debug_x"}});
  AddSeries(&req, {{"__name__", "kept"}, {"cluster_id", "spoofed"}});
  std::vector<std::pair<std::string, std::string>> inject = {
      {"cluster_id", "a"}};
  IngestOptions opts;
  opts.inject_labels = inject;
  REQUIRE(f.pipeline->Ingest(Body(req), opts).ok());
  auto out = f.Series("all");
  REQUIRE(out.size() == 1);
  CHECK(LabelsOf(out[0]) ==
        LabelPairs{{"__name__", "kept"}, {"cluster_id", "a"}});
  CHECK(f.Counter("promrelay_global_relabel_dropped_series_total") == 1);
}

TEST_CASE("metadata goes to every destination's shard 0") {
  Fixture f(testing::StarformConfig(3, 2));
  prometheus::WriteRequest req;
  auto* md = req.add_metadata();
  md->set_metric_family_name("up");
  md->set_help("Up.");
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  for (const char* dest : {"grafana-cloud", "victoriametrics"}) {
    REQUIRE(f.fakes[dest][0]->Metadata().size() == 1);
    CHECK(f.fakes[dest][0]->Metadata()[0].help() == "Up.");
    CHECK(f.fakes[dest][1]->records.empty());
  }
}

TEST_CASE("queue outcomes map to status codes") {
  Fixture f(testing::StarformConfig());
  prometheus::WriteRequest req = StarformRequest();

  SECTION("full with on_full reject") {
    f.fakes["victoriametrics"][0]->next_status =
        absl::ResourceExhaustedError("full");
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(absl::IsResourceExhausted(st));
    CHECK(st.message().find("victoriametrics") != absl::string_view::npos);
    // A 429 is a refusal the client retries, never a counted drop.
    CHECK(f.Counter("promrelay_dropped_samples_total",
                    {"victoriametrics", "queue_full"}) == 0);
    CHECK(f.Counter("promrelay_rejected_samples_total", {"queue_full"}) > 0);
  }
  SECTION("closed") {
    f.fakes["grafana-cloud"][0]->next_status = absl::UnavailableError("closed");
    CHECK(absl::IsUnavailable(f.pipeline->Ingest(Body(req))));
  }
  SECTION("larger than the whole queue") {
    f.fakes["grafana-cloud"][0]->next_status =
        absl::InvalidArgumentError("records exceed the bound");
    CHECK(absl::IsOutOfRange(f.pipeline->Ingest(Body(req))));
  }
  SECTION("disk error") {
    f.fakes["grafana-cloud"][0]->next_status = absl::DataLossError("EIO");
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(st.code() == absl::StatusCode::kDataLoss);
  }
  SECTION("a queue error with a client-error code is still a server error") {
    f.fakes["grafana-cloud"][0]->next_status =
        absl::FailedPreconditionError("segment file vanished");
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(st.code() == absl::StatusCode::kInternal);  // not 415
    CHECK(st.message().find("segment file vanished") !=
          absl::string_view::npos);
    f.fakes["grafana-cloud"][0]->next_status = absl::OkStatus();
    f.fakes["victoriametrics"][0]->durable_status =
        absl::ResourceExhaustedError("fdatasync: ENOSPC");
    st = f.pipeline->Ingest(Body(req));
    CHECK(st.code() == absl::StatusCode::kInternal);  // not 429
  }
  SECTION("append not made durable") {
    f.fakes["victoriametrics"][0]->durable_status =
        absl::InternalError("fdatasync: EIO");
    absl::Status st = f.pipeline->Ingest(Body(req));
    CHECK(st.code() == absl::StatusCode::kInternal);
    CHECK(st.message().find("fdatasync") != absl::string_view::npos);
    // Both destinations were appended to first, then waited for.
    CHECK(f.fakes["grafana-cloud"][0]->wait_calls == 1);
  }
  SECTION("a failed append still waits for earlier ones") {
    f.fakes["victoriametrics"][0]->next_status = absl::DataLossError("EIO");
    CHECK_FALSE(f.pipeline->Ingest(Body(req)).ok());
    CHECK(f.fakes["grafana-cloud"][0]->wait_calls == 1);
  }
  SECTION("drop_oldest is counted") {
    f.fakes["victoriametrics"][0]->report_dropped = 17;
    REQUIRE(f.pipeline->Ingest(Body(req)).ok());
    CHECK(f.Counter("promrelay_dropped_samples_total",
                    {"victoriametrics", "drop_oldest"}) == 17);
  }
}

TEST_CASE("known-full reject queue refuses before any destination accepts") {
  auto cfg = testing::StarformConfig();
  Fixture f(cfg);
  // Rebuild with a capacity so the pre-check applies.
  std::vector<DestinationQueues> qs;
  for (const auto& [name, shards] : f.fakes) {
    DestinationQueues dq;
    dq.name = name;
    for (const auto& s : shards) dq.shards.push_back(s);
    dq.shard_capacity_bytes = 1000;
    qs.push_back(dq);
  }
  REQUIRE(f.pipeline->Update(cfg, qs).ok());
  f.fakes["victoriametrics"][0]->stats_extra_bytes = 990;
  absl::Status st = f.pipeline->Ingest(Body(StarformRequest()));
  CHECK(absl::IsResourceExhausted(st));
  // grafana-cloud comes first in the config, and still got nothing.
  CHECK(f.fakes["grafana-cloud"][0]->append_calls == 0);
  CHECK(f.fakes["victoriametrics"][0]->append_calls == 0);
  f.fakes["victoriametrics"][0]->stats_extra_bytes = 0;
  CHECK(f.pipeline->Ingest(Body(StarformRequest())).ok());
}

TEST_CASE("works with real memory queues") {
  auto cfg = testing::StarformConfig(2, 2);
  std::vector<DestinationQueues> qs;
  std::vector<std::shared_ptr<queue::Queue>> all;
  for (const auto& d : cfg->remote_write) {
    DestinationQueues dq;
    dq.name = d.name;
    for (int i = 0; i < 2; ++i) {
      std::shared_ptr<queue::Queue> q =
          queue::NewMemoryQueue(1 << 20, queue::OnFull::kReject);
      dq.shards.push_back(q);
      all.push_back(q);
    }
    qs.push_back(dq);
  }
  metrics::Registry registry;
  Pipeline p(&registry);
  REQUIRE(p.Update(cfg, qs).ok());
  for (int i = 0; i < 10; ++i) REQUIRE(p.Ingest(Body(StarformRequest())).ok());
  uint64_t samples = 0;
  for (const auto& q : all) samples += q->GetStats().samples;
  CHECK(samples == 10 * 8);
  for (const auto& q : all) q->Close();
  CHECK(absl::IsUnavailable(p.Ingest(Body(StarformRequest()))));
}

TEST_CASE("Update needs queues for every destination") {
  metrics::Registry registry;
  Pipeline p(&registry);
  CHECK(absl::IsUnavailable(p.Ingest(testing::Compress(""))));
  CHECK(p.config() == nullptr);
  CHECK(absl::IsInvalidArgument(p.Update(testing::StarformConfig(), {})));
}

}  // namespace
}  // namespace promrelay::pipeline

namespace promrelay::pipeline {
namespace {

TEST_CASE("a repeated request takes the cache and gives the same output") {
  Fixture a(testing::StarformConfig(3, 2));
  Fixture b(testing::StarformConfig(3, 2));
  prometheus::WriteRequest req = StarformRequest();
  // Interleaved unchanged series: the cache may not take them (no
  // contiguous label bytes), yet the output must be the same.
  REQUIRE(a.pipeline->Ingest(Body(req)).ok());
  REQUIRE(a.pipeline->Ingest(Body(req)).ok());
  REQUIRE(b.pipeline->Ingest(Body(req)).ok());
  const double hits = a.CacheHits();
  // All 5 series come from the cache the second time, including the
  // shuttle and kube-state-metrics ones whose tenant labels grafana-cloud's
  // labeldrop removes (their new labels are kept encoded).
  CHECK(hits == 5);
  for (const char* dest : {"grafana-cloud", "victoriametrics"}) {
    const auto& qa = a.fakes[dest];
    const auto& qb = b.fakes[dest];
    for (size_t s = 0; s < qa.size(); ++s) {
      // a got everything twice; each round equals b's single round.
      auto pa = Payloads(*qa[s]);
      auto pb = Payloads(*qb[s]);
      REQUIRE(pa.size() == 2 * pb.size());
      for (size_t i = 0; i < pb.size(); ++i) {
        CHECK(pa[i] == pb[i]);
        CHECK(pa[pb.size() + i] == pb[i]);
      }
    }
  }
  CHECK(a.Counter("promrelay_relabel_dropped_series_total",
                  {"grafana-cloud"}) == 4);
  CHECK(a.Counter("promrelay_relabel_dropped_series_total",
                  {"victoriametrics"}) == 6);
}

TEST_CASE("cached outcomes: guard and global drop") {
  auto cfg = std::make_shared<config::Config>();
  cfg->relabel_configs =
      testing::Rules({testing::Drop("__name__", "debug_.*")});
  config::Destination d;
  d.name = "guarded";
  d.queue_config.shards = 2;
  d.forbidden_labels = {"project_id"};
  cfg->remote_write.push_back(std::move(d));
  Fixture f(cfg);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "debug_x"}}, 2);
  AddSeries(&req, {{"__name__", "a"}, {"project_id", "p"}}, 3);
  AddSeries(&req, {{"__name__", "b"}}, 4);
  for (int round = 0; round < 3; ++round) {
    REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  }
  CHECK(f.Series("guarded").size() == 3);
  CHECK(f.Counter("promrelay_global_relabel_dropped_series_total") == 3);
  CHECK(f.Counter("promrelay_forbidden_label_violations_total", {"guarded"}) ==
        3);
  CHECK(f.Counter("promrelay_dropped_samples_total",
                  {"guarded", "forbidden_label"}) == 9);
  CHECK(f.Counter("promrelay_queued_samples_total", {"guarded"}) == 12);
  CHECK(f.CacheHits() == 6);
}

TEST_CASE("a new config starts with an empty cache") {
  auto keep_all = std::make_shared<config::Config>();
  config::Destination d;
  d.name = "d";
  d.queue_config.shards = 1;
  keep_all->remote_write.push_back(d);
  Fixture f(keep_all);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "up"}, {"job", "api"}});
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  CHECK(f.Series("d").size() == 2);

  auto drop_api = std::make_shared<config::Config>();
  d.write_relabel_configs = testing::Rules({testing::Drop("job", "api")});
  drop_api->remote_write.push_back(d);
  std::vector<DestinationQueues> qs = {{"d", {f.fakes["d"][0]}, 0, {}}};
  REQUIRE(f.pipeline->Update(drop_api, qs).ok());
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  CHECK(f.Series("d").size() == 2);  // dropped now, not served from cache
}

TEST_CASE("rewritten labels are cached per config") {
  Fixture f(OneDestination("d", 2,
                           testing::Rules({testing::LabelDrop("project_id")})));
  prometheus::WriteRequest req;
  for (int i = 0; i < 20; ++i) {
    AddSeries(&req,
              {{"__name__", "m" + std::to_string(i)},
               {"project_id", "p"},
               {"service_id", "s"}},
              i + 1);
  }
  for (int round = 0; round < 3; ++round) {
    REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  }
  CHECK(f.CacheHits() == 40);
  auto series = f.Series("d");
  REQUIRE(series.size() == 60);
  for (const auto& ts : series) {
    CHECK(testing::Get(LabelsOf(ts), "project_id").empty());
    CHECK(testing::Get(LabelsOf(ts), "service_id") == "s");
  }
  // Every round, cached or not, wrote the same bytes to the same shards.
  for (const auto& q : f.fakes["d"]) CheckRoundsIdentical(*q, 3);

  // A reload that drops another label: no series may keep the old rewrite.
  std::vector<DestinationQueues> qs = {
      {"d", {f.fakes["d"][0], f.fakes["d"][1]}, 0, {}}};
  REQUIRE(f.pipeline
              ->Update(OneDestination(
                           "d", 2,
                           testing::Rules({testing::LabelDrop("service_id")})),
                       qs)
              .ok());
  for (auto& q : f.fakes["d"]) q->records.clear();
  for (int round = 0; round < 2; ++round) {
    REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  }
  series = f.Series("d");
  REQUIRE(series.size() == 40);
  for (const auto& ts : series) {
    CHECK(testing::Get(LabelsOf(ts), "project_id") == "p");
    CHECK(testing::Get(LabelsOf(ts), "service_id").empty());
  }
}

// A Starform-like request of `n` series: platform and customer jobs, a
// third of them with tenant labels, some with exemplars and a native
// histogram (copied verbatim on a cache hit), `round` moving the samples.
prometheus::WriteRequest VolumeRequest(int n, int round) {
  static const char* kJobs[] = {"shuttle",  "node-exporter",
                                "cadvisor", "kube-state-metrics",
                                "envoy",    "kubelet"};
  prometheus::WriteRequest req;
  for (int i = 0; i < n; ++i) {
    testing::LabelPairs labels = {{"__name__", "m" + std::to_string(i % 37)},
                                  {"instance", "10.0.0." + std::to_string(i)},
                                  {"job", kJobs[i % 6]}};
    if (i % 3 == 0) labels.push_back({"project_id", "p-" + std::to_string(i)});
    if (i % 5 == 0) labels.push_back({"service_id", "s-" + std::to_string(i)});
    std::sort(labels.begin(), labels.end());
    AddSeries(&req, labels, 1 + i % 3, 1700000000000 + round * 15000);
    prometheus::TimeSeries* ts = req.mutable_timeseries(i);
    if (i % 7 == 0) {
      auto* ex = ts->add_exemplars();
      auto* l = ex->add_labels();
      l->set_name("trace_id");
      l->set_value("t" + std::to_string(i));
      ex->set_value(i);
      ex->set_timestamp(1700000000000 + round);
    }
    if (i % 11 == 0) {
      auto* h = ts->add_histograms();
      h->set_count_int(i + round);
      h->set_sum(i * 0.5);
      h->set_timestamp(1700000000000 + round * 15000);
    }
  }
  return req;
}

TEST_CASE("with and without the cache the records are byte-identical") {
  // One pipeline sees every round (cache warm from round 1 on); a fresh one
  // per round never has a cache hit. Their records must be the same bytes.
  Fixture warm(testing::StarformConfig(3, 4));
  for (int round = 0; round < 4; ++round) {
    INFO("round " << round);
    Fixture cold(testing::StarformConfig(3, 4));
    const std::string body = Body(VolumeRequest(600, round));
    for (auto& [dest, qs] : warm.fakes) {
      for (auto& q : qs) q->records.clear();
    }
    REQUIRE(warm.pipeline->Ingest(body).ok());
    // On a thread of its own: the per-thread rewrite cache belongs to one
    // config, and sharing the thread would make the two evict each other.
    absl::Status cold_status;
    std::thread([&] { cold_status = cold.pipeline->Ingest(body); }).join();
    REQUIRE(cold_status.ok());
    CHECK(cold.CacheHits() == 0);
    if (round > 0) CHECK(warm.CacheHits() == 600 * round);
    for (const char* dest : {"grafana-cloud", "victoriametrics"}) {
      INFO(dest);
      const auto& wq = warm.fakes[dest];
      const auto& cq = cold.fakes[dest];
      REQUIRE(wq.size() == cq.size());
      for (size_t i = 0; i < wq.size(); ++i) {
        CHECK(Payloads(*wq[i]) == Payloads(*cq[i]));
      }
    }
  }
}

TEST_CASE("label values that end like samples are counted and routed exactly") {
  // The cached path guesses a series' label bytes from the samples at its
  // end. A label value ending in the bytes of a sample field makes that
  // guess wrong; the series must still be counted and sent as it is, the
  // first time and when the cache knows it.
  const std::string fake_sample("\x12\x02\x10\x07", 4);
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "a"}, {"job", "cadvisor"}, {"z", fake_sample}});
  AddSeries(&req, {{"__name__", "b"}, {"job", "cadvisor"}, {"z", fake_sample}},
            /*samples=*/0);
  AddSeries(&req, {{"__name__", "c"}, {"job", "shuttle"}}, /*samples=*/2);
  const std::string body = Body(req);
  Fixture warm(testing::StarformConfig());
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    for (auto& [dest, qs] : warm.fakes) {
      for (auto& q : qs) q->records.clear();
    }
    REQUIRE(warm.pipeline->Ingest(body).ok());
    // Known from the second round on, each by its real label bytes.
    CHECK(warm.CacheHits() == 3 * round);
    CHECK(warm.Counter("promrelay_received_samples_total") == 3 * (round + 1));
    CHECK(warm.Counter("promrelay_queued_samples_total", {"victoriametrics"}) ==
          1 * (round + 1));
    CHECK(warm.Counter("promrelay_queued_samples_total", {"grafana-cloud"}) ==
          2 * (round + 1));
    Fixture cold(testing::StarformConfig());
    absl::Status cold_status;
    std::thread([&] { cold_status = cold.pipeline->Ingest(body); }).join();
    REQUIRE(cold_status.ok());
    for (const char* dest : {"grafana-cloud", "victoriametrics"}) {
      INFO(dest);
      for (size_t i = 0; i < warm.fakes[dest].size(); ++i) {
        CHECK(Payloads(*warm.fakes[dest][i]) == Payloads(*cold.fakes[dest][i]));
      }
    }
    const auto customer = warm.Series("victoriametrics");
    REQUIRE(customer.size() == 2);
    for (const auto& ts : customer) {
      CHECK(testing::Get(LabelsOf(ts), "z") == fake_sample);
    }
  }
}

TEST_CASE("series the cache cannot key still give the same bytes") {
  // Labels interleaved with samples (legal protobuf, sent by no known
  // agent): no contiguous label bytes to key on, so every round relabels.
  const std::string label_a = Bytes().Len(1, "__name__").Len(2, "up").b;
  const std::string label_b = Bytes().Len(1, "job").Len(2, "shuttle").b;
  const std::string label_c = Bytes().Len(1, "project_id").Len(2, "p").b;
  uint64_t bits;
  const double value = 1;
  std::memcpy(&bits, &value, sizeof bits);
  const std::string sample =
      Bytes().Fixed64(1, bits).VarintField(2, 1700000000000).b;
  const std::string series =
      Bytes().Len(1, label_a).Len(2, sample).Len(1, label_b).Len(1, label_c).b;
  const std::string body = testing::Compress(Bytes().Len(1, series).b);
  Fixture f(testing::StarformConfig());
  for (int round = 0; round < 2; ++round) {
    REQUIRE(f.pipeline->Ingest(body).ok());
  }
  CHECK(f.CacheHits() == 0);
  CheckRoundsIdentical(*f.fakes["grafana-cloud"][0], 2);
  const auto got = f.Series("grafana-cloud");
  REQUIRE(got.size() == 2);
  CHECK(testing::Get(LabelsOf(got[0]), "job") == "shuttle");
  CHECK(testing::Get(LabelsOf(got[0]), "project_id").empty());
}

TEST_CASE("requests with injected labels bypass the cache") {
  Fixture f(testing::StarformConfig());
  prometheus::WriteRequest req;
  AddSeries(&req, {{"__name__", "up"}, {"job", "shuttle"}});
  const std::string body = Body(req);
  for (const char* cluster : {"a", "b", "a"}) {
    const std::vector<std::pair<std::string, std::string>> inject = {
        {"cluster_id", cluster}};
    IngestOptions opts;
    opts.inject_labels = inject;
    REQUIRE(f.pipeline->Ingest(body, opts).ok());
  }
  CHECK(f.CacheHits() == 0);
  const auto got = f.Series("grafana-cloud");
  REQUIRE(got.size() == 3);
  CHECK(testing::Get(LabelsOf(got[0]), "cluster_id") == "a");
  CHECK(testing::Get(LabelsOf(got[1]), "cluster_id") == "b");
  CHECK(testing::Get(LabelsOf(got[2]), "cluster_id") == "a");
}

TEST_CASE("a thread without another thread's rewrite relabels that series") {
  Fixture f(testing::StarformConfig(2, 2));
  const prometheus::WriteRequest req = StarformRequest();
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  // Outcomes are shared, rewritten labels are per thread: a second thread
  // finds kRewritten outcomes without their labels and must relabel.
  absl::Status other_status;
  std::thread other([&] { other_status = f.pipeline->Ingest(Body(req)); });
  other.join();
  REQUIRE(other_status.ok());
  REQUIRE(f.pipeline->Ingest(Body(req)).ok());
  // Round 1: no hits; round 2 (other thread): the 3 unchanged series, the
  // 2 rewritten ones relabeled; round 3: all 5.
  CHECK(f.CacheHits() == 8);
  for (const auto& ts : f.Series("grafana-cloud")) {
    CHECK(testing::Get(LabelsOf(ts), "project_id").empty());
    CHECK(testing::Get(LabelsOf(ts), "service_id").empty());
    CHECK(testing::Get(LabelsOf(ts), "workspace_id").empty());
  }
  CHECK(f.Series("grafana-cloud").size() == 3 * 3);
  for (const char* dest : {"grafana-cloud", "victoriametrics"}) {
    for (const auto& q : f.fakes[dest]) CheckRoundsIdentical(*q, 3);
  }
}

}  // namespace
}  // namespace promrelay::pipeline
