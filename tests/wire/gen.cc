#include "tests/wire/gen.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace promrelay::wire::testing {
namespace {

constexpr const char* kMetricNames[] = {
    "up",
    "http_requests_total",
    "container_cpu_usage_seconds_total",
    "node_filesystem_avail_bytes",
    "envoy_cluster_upstream_rq_time_bucket",
    "kube_pod_status_phase",
};
constexpr const char* kLabelNames[] = {
    "job",        "instance",   "namespace", "pod",          "container",
    "project_id", "service_id", "le",        "code",         "method",
    "zone",       "cluster",    "x",         "workspace_id",
};

}  // namespace

double Generator::Value() {
  switch (Uniform(0, 9)) {
    case 0:
      return std::numeric_limits<double>::quiet_NaN();
    case 1: {
      // Prometheus' staleness marker: a NaN with a specific payload that a
      // relay must keep bit for bit.
      uint64_t bits = 0x7ff0000000000002ull;
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return d;
    }
    case 2:
      return std::numeric_limits<double>::infinity();
    case 3:
      return 0;
    default:
      return std::uniform_real_distribution<double>(-1e12, 1e12)(rng_);
  }
}

int64_t Generator::Timestamp() {
  // Negative timestamps encode as 10-byte varints.
  if (Chance(0.05)) return -Uniform(1, 1000000);
  return 1700000000000 + Uniform(0, 1000000);
}

std::string Generator::LabelValue(double long_value_rate) {
  if (Chance(long_value_rate)) {
    return std::string(100 * 1024, static_cast<char>('a' + Uniform(0, 25)));
  }
  switch (Uniform(0, 11)) {
    case 0:
      return "";
    case 1:
      return "\xff\xfe\x80 not utf-8 \xc3";
    case 2:
      return "gr\xc3\xbc\xc3\x9f dich \xe2\x9c\x93";  // valid UTF-8
    case 3:
      return std::string("nul\0inside", 10);
    default: {
      std::string s;
      int n = Uniform(1, 40);
      for (int i = 0; i < n; ++i) {
        s.push_back(static_cast<char>(Uniform(0x21, 0x7e)));
      }
      return s;
    }
  }
}

void Generator::FillHistogram(prometheus::Histogram* h) {
  const bool is_float = Chance(0.5);
  const bool custom = Chance(0.2);
  if (is_float) {
    h->set_count_float(std::abs(Value()));
    h->set_zero_count_float(Uniform(0, 100) / 4.0);
  } else {
    h->set_count_int(static_cast<uint64_t>(Uniform(0, 1 << 30))
                     << Uniform(0, 30));
    h->set_zero_count_int(Uniform(0, 1000));
  }
  h->set_sum(Value());
  h->set_schema(custom ? -53 : Uniform(-4, 8));
  h->set_zero_threshold(Chance(0.5) ? 1e-128 : 0);
  auto spans = [&](auto* list) {
    int n = Uniform(0, 3);
    int buckets = 0;
    for (int i = 0; i < n; ++i) {
      auto* s = list->Add();
      s->set_offset(Uniform(-5, 5));
      s->set_length(Uniform(0, 4));
      buckets += s->length();
    }
    return buckets;
  };
  if (!custom) {
    int nb = spans(h->mutable_negative_spans());
    for (int i = 0; i < nb; ++i) {
      if (is_float) {
        h->add_negative_counts(Uniform(0, 1000) / 8.0);
      } else {
        h->add_negative_deltas(Uniform(-1000000, 1000000));
      }
    }
  }
  int pb = spans(h->mutable_positive_spans());
  for (int i = 0; i < pb; ++i) {
    if (is_float) {
      h->add_positive_counts(Uniform(0, 1000) / 8.0);
    } else {
      h->add_positive_deltas(Uniform(-1000000, 1000000));
    }
  }
  if (custom) {
    double bound = 0;
    for (int i = 0, n = Uniform(1, 6); i < n; ++i) {
      bound += Uniform(1, 100) / 10.0;
      h->add_custom_values(bound);
    }
  }
  h->set_reset_hint(
      static_cast<prometheus::Histogram::ResetHint>(Uniform(0, 3)));
  h->set_timestamp(Timestamp());
}

void Generator::FillSeries(prometheus::TimeSeries* ts, double long_value_rate) {
  if (!Chance(0.05)) {  // a few series without __name__
    auto* l = ts->add_labels();
    l->set_name("__name__");
    l->set_value(kMetricNames[Uniform(0, std::size(kMetricNames) - 1)]);
  }
  for (int i = 0, n = Uniform(0, 12); i < n; ++i) {
    auto* l = ts->add_labels();
    if (Chance(0.02)) {
      l->set_name("");  // accepted by the decoder; the server validates
    } else if (Chance(0.03)) {
      l->set_name("\xfe\xff_bad_name");
    } else {
      l->set_name(kLabelNames[Uniform(0, std::size(kLabelNames) - 1)]);
    }
    l->set_value(LabelValue(long_value_rate));
  }
  const int kind = Uniform(0, 9);
  const int samples = kind < 7 ? Uniform(0, 3) : 0;
  const int histograms = kind >= 6 ? Uniform(1, 2) : 0;
  for (int i = 0; i < samples; ++i) {
    auto* s = ts->add_samples();
    s->set_value(Value());
    s->set_timestamp(Timestamp());
  }
  for (int i = 0; i < histograms; ++i) FillHistogram(ts->add_histograms());
  for (int i = 0, n = Chance(0.2) ? Uniform(1, 2) : 0; i < n; ++i) {
    auto* e = ts->add_exemplars();
    if (!Chance(0.2)) {
      auto* l = e->add_labels();
      l->set_name("trace_id");
      l->set_value(LabelValue(0));
    }
    e->set_value(Value());
    e->set_timestamp(Timestamp());
  }
}

prometheus::WriteRequest Generator::Request(const GenOptions& opt) {
  prometheus::WriteRequest req;
  for (int i = 0; i < opt.series; ++i) {
    FillSeries(req.add_timeseries(), opt.long_value_rate);
  }
  for (int i = 0; i < opt.metadata; ++i) {
    auto* m = req.add_metadata();
    m->set_type(
        static_cast<prometheus::MetricMetadata::MetricType>(Uniform(0, 7)));
    m->set_metric_family_name(
        kMetricNames[Uniform(0, std::size(kMetricNames) - 1)]);
    if (Chance(0.8)) m->set_help(LabelValue(0));
    if (Chance(0.3)) m->set_unit("seconds");
  }
  return req;
}

}  // namespace promrelay::wire::testing
