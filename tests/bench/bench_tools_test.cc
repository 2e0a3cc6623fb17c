// The benchmark's own tools must be right for its verdicts to mean anything:
// the generator's per-destination expectations, the sink's reader and
// fingerprint, the latency histogram and the small HTTP layer.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "bench/histogram.h"
#include "bench/http_lite.h"
#include "bench/rw_scan.h"
#include "bench/series_hash.h"
#include "bench/starform_gen.h"

#ifdef PROMRELAY_BENCH_HAVE_PROTO
#include "prometheus/remote.pb.h"
#endif

namespace promrelay::bench {
namespace {

GenOptions SmallOptions() {
  GenOptions o;
  o.distinct_series = 5000;
  o.series_per_request = 500;
  o.rounds = 2;
  o.start_timestamp_ms = 1700000000000;
  return o;
}

bool IsPlatform(const GenSeries& s) {
  for (const auto& [n, v] : s.labels) {
    if (n == "job")
      return v == "shuttle" || v == "node-exporter" ||
             v == "kube-state-metrics" || v == "envoy-self";
  }
  return false;
}

TEST_CASE("generator: distinct, sorted, realistic series") {
  StarformGenerator gen(SmallOptions());
  std::set<std::string> seen;
  std::set<std::string> jobs;
  int platform = 0, tenant_on_customer = 0;
  for (uint64_t i = 0; i < gen.num_series(); ++i) {
    GenSeries s = gen.MakeSeries(i);
    REQUIRE(s.labels.size() >= 8);
    REQUIRE(s.labels.size() <= 14);
    REQUIRE(std::is_sorted(s.labels.begin(), s.labels.end()));
    std::string key;
    bool has_name = false, has_job = false, has_tenant = false;
    for (const auto& [n, v] : s.labels) {
      REQUIRE(!v.empty());
      key += n + "=" + v + ",";
      has_name |= n == "__name__";
      has_job |= n == "job";
      has_tenant |= n == "project_id";
      if (n == "job") jobs.insert(v);
    }
    REQUIRE(has_name);
    REQUIRE(has_job);
    REQUIRE(seen.insert(key).second);  // no duplicate series
    REQUIRE(s.platform == IsPlatform(s));
    platform += s.platform;
    if (!s.platform && has_tenant) ++tenant_on_customer;
  }
  CHECK(jobs == std::set<std::string>{"cadvisor", "envoy", "kubelet",
                                      "kube-state-metrics", "node-exporter",
                                      "envoy-self", "shuttle"});
  CHECK(platform > 1000);
  CHECK(platform < 2000);
  CHECK(tenant_on_customer > 3000);
}

TEST_CASE("generator: deterministic payloads") {
  StarformGenerator a(SmallOptions()), b(SmallOptions());
  a.Prepare();
  b.Prepare();
  for (uint64_t k : {0u, 7u, 19u}) {
    Payload pa = a.Build(k, true), pb = b.Build(k, true);
    REQUIRE(pa.compressed == pb.compressed);
    REQUIRE(pa.raw == pb.raw);
  }
  GenOptions other = SmallOptions();
  other.seed = 2;
  StarformGenerator c(other);
  c.Prepare();
  CHECK(c.Build(0, true).raw != a.Build(0, true).raw);
}

TEST_CASE("generator: expectations match an independent split") {
  GenOptions o = SmallOptions();
  StarformGenerator gen(o);
  gen.Prepare();
  const uint64_t blocks = gen.blocks_per_round();
  REQUIRE(gen.num_payloads() == blocks * o.rounds);
  for (uint64_t k : {uint64_t{0}, blocks - 1, blocks + 3}) {
    Payload p = gen.Build(k, false);
    const uint64_t round = k / blocks;
    const int64_t ts = o.start_timestamp_ms +
                       static_cast<int64_t>(round) * o.scrape_interval_ms;
    Expectation plat, cust;
    for (uint64_t i = (k % blocks) * o.series_per_request;
         i < (k % blocks + 1) * o.series_per_request; ++i) {
      GenSeries s = gen.MakeSeries(i);
      const double v = StarformGenerator::Value(s, round);
      auto labels = s.labels;
      Expectation& e = IsPlatform(s) ? plat : cust;
      if (IsPlatform(s)) {
        auto drop = [](const auto& kv) {
          return kv.first == "project_id" || kv.first == "service_id" ||
                 kv.first == "workspace_id";
        };
        if (std::any_of(labels.begin(), labels.end(), drop))
          ++e.tenant_labelled;
        labels.erase(std::remove_if(labels.begin(), labels.end(), drop),
                     labels.end());
      }
      e.samples++;
      e.series++;
      e.hash += SampleHash(LabelsHash(labels), ts, v);
    }
    CHECK(p.platform.samples == plat.samples);
    CHECK(p.customer.samples == cust.samples);
    CHECK(p.platform.hash == plat.hash);
    CHECK(p.customer.hash == cust.hash);
    CHECK(p.platform.tenant_labelled == plat.tenant_labelled);
    CHECK(p.series == o.series_per_request);
  }
}

TEST_CASE("generator: counters advance between rounds") {
  StarformGenerator gen(SmallOptions());
  int increasing = 0, counters = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    GenSeries s = gen.MakeSeries(i);
    if (!s.counter) continue;
    ++counters;
    REQUIRE(StarformGenerator::Value(s, 1) >= StarformGenerator::Value(s, 0));
    increasing +=
        StarformGenerator::Value(s, 3) > StarformGenerator::Value(s, 0);
  }
  CHECK(counters > 50);
  CHECK(increasing > counters / 2);
}

TEST_CASE("scan: counts and fingerprint of generated payloads") {
  StarformGenerator gen(SmallOptions());
  gen.Prepare();
  Payload p = gen.Build(3, true);
  ScanOptions so;
  so.watch_labels = {"project_id"};
  ScanResult r;
  std::string err;
  REQUIRE(ScanWriteRequest(p.raw, so, &r, &err));
  CHECK(r.series == p.series);
  CHECK(r.samples == p.series);
  CHECK(r.hash == p.all.hash);
  CHECK(r.unsorted_series == 0);
  CHECK(r.watched_label_series > 0);
  CHECK(r.watched_label_series < p.series);

  // Truncating anywhere inside must be reported, never crash.
  int failures = 0;
  for (size_t cut = 1; cut < 2000; cut += 37) {
    ScanResult t;
    failures +=
        !ScanWriteRequest(std::string_view(p.raw).substr(0, cut), so, &t, &err);
  }
  CHECK(failures > 40);
  ScanResult bad;
  CHECK_FALSE(
      ScanWriteRequest(std::string("\x0a\xff\xff\xff\x0f", 5), so, &bad, &err));
  CHECK_FALSE(err.empty());
}

TEST_CASE("scan: fingerprint ignores order, sees a changed value") {
  StarformGenerator gen(SmallOptions());
  gen.Prepare();
  Payload a = gen.Build(0, true), b = gen.Build(1, true);
  ScanOptions so;
  ScanResult ab, ba, r1;
  std::string err;
  REQUIRE(ScanWriteRequest(a.raw + b.raw, so, &ab, &err));
  REQUIRE(ScanWriteRequest(b.raw + a.raw, so, &ba, &err));
  CHECK(ab.hash == ba.hash);
  CHECK(ab.hash == a.all.hash + b.all.hash);
  // Flip one byte of the last sample's value (fixed64 just before the
  // timestamp varint at the very end).
  std::string changed = a.raw;
  changed[changed.size() - 9] ^= 1;
  REQUIRE(ScanWriteRequest(changed, so, &r1, &err));
  CHECK(r1.samples == a.series);
  CHECK(r1.hash != a.all.hash);
}

#ifdef PROMRELAY_BENCH_HAVE_PROTO
TEST_CASE("generator: protoc reference decodes the same series") {
  StarformGenerator gen(SmallOptions());
  gen.Prepare();
  Payload p = gen.Build(2, true);
  prometheus::WriteRequest req;
  REQUIRE(req.ParseFromString(p.raw));
  REQUIRE(static_cast<uint32_t>(req.timeseries_size()) == p.series);
  for (int j = 0; j < req.timeseries_size(); j += 97) {
    GenSeries s = gen.MakeSeries(2 * 500 + j);
    const auto& ts = req.timeseries(j);
    REQUIRE(ts.labels_size() == static_cast<int>(s.labels.size()));
    for (int l = 0; l < ts.labels_size(); ++l) {
      CHECK(ts.labels(l).name() == s.labels[l].first);
      CHECK(ts.labels(l).value() == s.labels[l].second);
    }
    REQUIRE(ts.samples_size() == 1);
    CHECK(ts.samples(0).value() == StarformGenerator::Value(s, 0));
    CHECK(ts.samples(0).timestamp() == 1700000000000);
  }
}
#endif

TEST_CASE("histogram: quantiles within 1%") {
  LatencyHistogram h;
  for (uint64_t us = 1; us <= 1000; ++us) h.Record(us * 1000);
  CHECK(h.count() == 1000);
  CHECK(h.max() == 1000000);
  auto near = [](uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want * 0.01;
  };
  CHECK(near(h.Quantile(0.5), 500000));
  CHECK(near(h.Quantile(0.99), 990000));
  CHECK(h.Quantile(1.0) == 1000000);
  LatencyHistogram other;
  other.Record(5);
  h.Merge(other);
  CHECK(h.min() == 5);
  CHECK(h.Quantile(0.0001) == 5);
}

TEST_CASE("http_lite: requests and responses over a socket pair") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  std::thread writer([fd = sv[1]] {
    WriteAll(fd,
             "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             "\r\nhello",
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
             "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    close(fd);
  });
  Connection c(sv[0]);
  Message m;
  std::string err;
  REQUIRE(c.ReadRequest(&m, 1 << 20, &err));
  CHECK(m.method == "POST");
  CHECK(m.target == "/api/v1/write");
  CHECK(m.body == "hello");
  CHECK(m.keep_alive);
  REQUIRE(c.ReadResponse(&m, 1 << 20, &err));
  CHECK(m.status == 200);
  CHECK(m.body == "abcde");
  REQUIRE(c.ReadResponse(&m, 1 << 20, &err));
  CHECK(m.status == 204);
  CHECK_FALSE(m.keep_alive);
  CHECK_FALSE(c.ReadResponse(&m, 1 << 20, &err));
  CHECK(err.empty());  // clean EOF between messages
  writer.join();

  Url u;
  CHECK(ParseUrl("http://127.0.0.1:9201/api/v1/write", &u, &err));
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 9201);
  CHECK(u.path == "/api/v1/write");
  CHECK_FALSE(ParseUrl("https://x/", &u, &err));
  CHECK_FALSE(ParseUrl("http://x:0/", &u, &err));
}

TEST_CASE("http_lite: oversized body is refused") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  WriteAll(sv[1], "POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n");
  Connection c(sv[0]);
  Message m;
  std::string err;
  CHECK_FALSE(c.ReadRequest(&m, 1000, &err));
  CHECK(err == "body too large");
  close(sv[1]);
}

}  // namespace
}  // namespace promrelay::bench
