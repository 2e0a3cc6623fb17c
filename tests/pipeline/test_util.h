// Helpers for the pipeline and server tests: requests built with the protoc
// classes, a scriptable queue, and configs built by hand.
#ifndef PROMRELAY_TESTS_PIPELINE_TEST_UTIL_H_
#define PROMRELAY_TESTS_PIPELINE_TEST_UTIL_H_

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "prometheus/remote.pb.h"
#include "proxy/config/config.h"
#include "proxy/queue/queue.h"
#include "proxy/relabel/relabel.h"
#include "proxy/wire/snappy.h"

namespace promrelay::testing {

using LabelPairs = std::vector<std::pair<std::string, std::string>>;

inline void AddSeries(prometheus::WriteRequest* req, const LabelPairs& labels,
                      int samples = 1, int64_t ts = 1700000000000) {
  prometheus::TimeSeries* s = req->add_timeseries();
  for (const auto& [n, v] : labels) {
    prometheus::Label* l = s->add_labels();
    l->set_name(n);
    l->set_value(v);
  }
  for (int i = 0; i < samples; ++i) {
    prometheus::Sample* smp = s->add_samples();
    smp->set_value(i + 0.5);
    smp->set_timestamp(ts + i * 1000);
  }
}

inline std::string Compress(const std::string& raw) {
  std::string out;
  wire::SnappyCompress(raw, &out);
  return out;
}

inline std::string Body(const prometheus::WriteRequest& req) {
  return Compress(req.SerializeAsString());
}

inline LabelPairs LabelsOf(const prometheus::TimeSeries& ts) {
  LabelPairs out;
  for (const auto& l : ts.labels()) out.emplace_back(l.name(), l.value());
  return out;
}

inline std::string Get(const LabelPairs& labels, const std::string& name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return "";
}

// A queue that records appends and can be told to fail.
// The WriteRequest a record holds. The pipeline queues snappy blocks; a
// record that is not one is a test failure (throws).
inline std::string RawPayload(const queue::Record& r) {
  if (!r.compressed) throw std::runtime_error("record is not compressed");
  std::string raw;
  if (!wire::SnappyDecompress(r.payload, 1u << 30, &raw).ok()) {
    throw std::runtime_error("record is not a valid snappy block");
  }
  return raw;
}

class FakeQueue : public queue::Queue {
 public:
  absl::Status Append(std::vector<queue::Record> records,
                      uint64_t* dropped_samples) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++append_calls;
    if (!next_status.ok()) return next_status;
    if (dropped_samples != nullptr) *dropped_samples += report_dropped;
    for (auto& r : records) {
      bytes += r.payload.size();
      this->records.push_back(std::move(r));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<queue::Record>> Read(size_t, absl::Duration,
                                                  absl::Duration) override {
    return std::vector<queue::Record>{};
  }
  absl::Status WaitDurable(uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++wait_calls;
    return durable_status;
  }
  absl::Status Commit(size_t) override { return absl::OkStatus(); }
  queue::Stats GetStats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    queue::Stats s;
    s.bytes = bytes + stats_extra_bytes;
    s.records = records.size();
    return s;
  }
  void Close() override { closed = true; }

  // All series appended, decoded, in order.
  std::vector<prometheus::TimeSeries> Series() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<prometheus::TimeSeries> out;
    for (const auto& r : records) {
      prometheus::WriteRequest req;
      if (!req.ParseFromString(RawPayload(r)))
        throw std::runtime_error("bad record");
      for (const auto& ts : req.timeseries()) out.push_back(ts);
    }
    return out;
  }
  std::vector<prometheus::MetricMetadata> Metadata() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<prometheus::MetricMetadata> out;
    for (const auto& r : records) {
      prometheus::WriteRequest req;
      req.ParseFromString(RawPayload(r));
      for (const auto& m : req.metadata()) out.push_back(m);
    }
    return out;
  }

  mutable std::mutex mu_;
  std::vector<queue::Record> records;
  uint64_t bytes = 0;
  uint64_t stats_extra_bytes = 0;
  absl::Status next_status;
  uint64_t report_dropped = 0;
  int append_calls = 0;
  absl::Status durable_status;
  int wait_calls = 0;
  bool closed = false;
};

inline relabel::RuleSet Rules(const std::vector<relabel::RuleSpec>& specs) {
  auto r = relabel::RuleSet::Compile(specs, relabel::NameScheme::kUtf8);
  if (!r.ok()) throw std::runtime_error(std::string(r.status().message()));
  return std::move(*r);
}

inline relabel::RuleSpec Keep(const std::string& source,
                              const std::string& regex) {
  relabel::RuleSpec s;
  s.source_labels = std::vector<std::string>{source};
  s.regex = regex;
  s.action = "keep";
  return s;
}
inline relabel::RuleSpec Drop(const std::string& source,
                              const std::string& regex) {
  relabel::RuleSpec s = Keep(source, regex);
  s.action = "drop";
  return s;
}
inline relabel::RuleSpec LabelDrop(const std::string& regex) {
  relabel::RuleSpec s;
  s.regex = regex;
  s.action = "labeldrop";
  return s;
}
inline relabel::RuleSpec Replace(const std::string& source,
                                 const std::string& target,
                                 const std::string& replacement) {
  relabel::RuleSpec s;
  s.source_labels = std::vector<std::string>{source};
  s.target_label = target;
  s.replacement = replacement;
  return s;
}

inline constexpr const char* kPlatformJobs =
    "shuttle|node-exporter|kube-state-metrics|envoy-self";

// The Starform split of DESIGN.md, built by hand.
inline std::shared_ptr<config::Config> StarformConfig(int platform_shards = 1,
                                                      int customer_shards = 1) {
  auto cfg = std::make_shared<config::Config>();
  config::Destination platform;
  platform.name = "grafana-cloud";
  platform.url = "http://127.0.0.1:1/api/prom/push";
  platform.write_relabel_configs =
      Rules({Keep("job", kPlatformJobs),
             LabelDrop("project_id|service_id|workspace_id")});
  platform.forbidden_labels = {"project_id", "service_id", "workspace_id"};
  platform.queue_config.shards = platform_shards;
  cfg->remote_write.push_back(std::move(platform));
  config::Destination customer;
  customer.name = "victoriametrics";
  customer.url = "http://127.0.0.1:1/api/v1/write";
  customer.write_relabel_configs = Rules({Drop("job", kPlatformJobs)});
  customer.queue_config.shards = customer_shards;
  cfg->remote_write.push_back(std::move(customer));
  return cfg;
}

}  // namespace promrelay::testing

#endif  // PROMRELAY_TESTS_PIPELINE_TEST_UTIL_H_
