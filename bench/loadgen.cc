// promrelay-loadgen: sends pre-generated Starform remote_write requests to a
// receiver at fixed concurrency (closed loop) or a fixed rate (open loop,
// latency measured from each request's intended send time so a stalled
// server cannot hide its queueing: no coordinated omission), then prints a
// JSON summary including what each destination of the Starform split should
// have received.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/histogram.h"
#include "bench/http_lite.h"
#include "bench/rw_scan.h"
#include "bench/starform_gen.h"
#include "bench/strutil.h"

#ifdef PROMRELAY_BENCH_HAVE_PROTO
#include "prometheus/remote.pb.h"
#endif

namespace promrelay::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] = R"(usage: promrelay-loadgen [options]
Sends synthetic Starform remote_write (RW1, snappy) traffic and prints a JSON
summary on stdout.

Target and load:
  --url URL          receiver, e.g. http://127.0.0.1:9201/api/v1/write
  -c N               concurrent connections (default 4)
  -rate R            open loop: R requests/s in total (default 0: closed loop)
  -d DURATION        run time, e.g. 10s, 500ms, 1m (default 10s unless -n)
  -n N               stop after N requests (with -d: whichever comes first)
  --timeout DURATION per-request socket timeout (default 30s)
  --header 'K: V'    extra request header (repeatable)
Payloads:
  --series N         distinct series (default 100000)
  --batch N          series per request (default 2000)
  --rounds N         pre-generated scrape rounds (default 4)
  --start-ts MS      timestamp of round 0 in ms (default: now, aligned down
                     to the scrape interval, minus the rounds)
  --interval-ms N    scrape interval between rounds (default 15000)
  --seed N           (default 1)
Other modes:
  --expect           print what sending payloads 0..n-1 once each (-n,
                     default all) delivers per destination, then exit
  --dump DIR         write payload-NNNNN.snappy (and .pb) plus expect.json
                     to DIR, then exit
  --print-series N   print the first N series in Prometheus notation, exit
  --self-check       verify every payload decodes (independent reader, and
                     the protoc reference classes when built with them)
  --out FILE         also write the JSON summary to FILE
  --fail-on-error    exit 1 when any request failed (default: exit 0 and
                     report errors in the summary)
  -q                 no progress on stderr
)";

bool ParseDurationNs(std::string_view s, int64_t* ns) {
  double mult = 1e9;
  std::string_view num = s;
  if (s.ends_with("ms")) {
    mult = 1e6;
    num = s.substr(0, s.size() - 2);
  } else if (s.ends_with("us")) {
    mult = 1e3;
    num = s.substr(0, s.size() - 2);
  } else if (s.ends_with("s")) {
    num = s.substr(0, s.size() - 1);
  } else if (s.ends_with("m")) {
    mult = 60e9;
    num = s.substr(0, s.size() - 1);
  }
  double v;
  if (!absl::SimpleAtod(AV(num), &v) || v < 0) return false;
  *ns = static_cast<int64_t>(v * mult);
  return true;
}

struct Options {
  std::string url;
  int concurrency = 4;
  double rate = 0;
  int64_t duration_ns = -1;
  int64_t requests = -1;
  int64_t timeout_ns = 30'000'000'000;
  std::vector<std::string> headers;
  GenOptions gen;
  bool start_ts_given = false;
  bool expect = false;
  std::string dump_dir;
  bool self_check = false;
  int64_t print_series = -1;
  std::string out_file;
  bool fail_on_error = false;
  bool quiet = false;
};

struct Prebuilt {
  std::string head;  // request line + headers, ending in the empty line
  Payload payload;
};

std::string ExpectationJson(const Expectation& e) {
  return absl::StrFormat(
      R"({"series":%d,"samples":%d,"hash":"%016x","tenant_labelled_series":%d})",
      e.series, e.samples, e.hash, e.tenant_labelled);
}

// Per destination of the Starform split, and "all": the requests unchanged.
std::string ExpectJson(const Expectation& platform, const Expectation& customer,
                       const Expectation& all) {
  return absl::StrCat(R"({"platform":)", ExpectationJson(platform),
                      R"(,"customer":)", ExpectationJson(customer),
                      R"(,"all":)", ExpectationJson(all), "}");
}

struct WorkerResult {
  LatencyHistogram hist;
  uint64_t requests = 0, ok = 0, samples_ok = 0, samples_attempted = 0,
           bytes = 0, late = 0;
  std::map<std::string, uint64_t> errors;
  Expectation platform, customer, all;
  std::string first_error;
};

class Driver {
 public:
  Driver(const Options& o, const Url& url, const std::vector<Prebuilt>& p)
      : opts_(o), url_(url), payloads_(p) {}

  void Worker(WorkerResult* r) {
    std::unique_ptr<Connection> conn;
    Message resp;
    std::string error;
    const double interval_ns = opts_.rate > 0 ? 1e9 / opts_.rate : 0;
    for (;;) {
      const int64_t k = next_.fetch_add(1, std::memory_order_relaxed);
      if (opts_.requests >= 0 && k >= opts_.requests) return;
      Clock::time_point intended = Clock::now();
      if (interval_ns > 0) {
        intended = start_ + std::chrono::nanoseconds(
                                static_cast<int64_t>(interval_ns * k));
        if (intended >= deadline_) return;
        if (intended > Clock::now()) {
          std::this_thread::sleep_until(intended);
        } else if (Clock::now() - intended > std::chrono::milliseconds(1)) {
          ++r->late;
        }
      } else if (intended >= deadline_) {
        return;
      }
      const Prebuilt& pb = payloads_[k % payloads_.size()];
      ++r->requests;
      r->samples_attempted += pb.payload.series;
      if (!conn) {
        int fd = Connect(url_.host, url_.port);
        if (fd < 0) {
          RecordError(r, "connect", std::strerror(errno));
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        timeval tv{static_cast<time_t>(opts_.timeout_ns / 1'000'000'000),
                   static_cast<suseconds_t>((opts_.timeout_ns % 1'000'000'000) /
                                            1000)};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        conn = std::make_unique<Connection>(fd);
      }
      if (!WriteAll(conn->fd(), pb.head, pb.payload.compressed)) {
        RecordError(r, "io", std::string("write: ") + std::strerror(errno));
        conn.reset();
        continue;
      }
      if (!conn->ReadResponse(&resp, 1 << 20, &error)) {
        RecordError(r, "io", error.empty() ? "connection closed" : error);
        conn.reset();
        continue;
      }
      const auto done = Clock::now();
      r->hist.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(done - intended)
              .count()));
      r->bytes += pb.payload.compressed.size();
      if (resp.status >= 200 && resp.status < 300) {
        ++r->ok;
        r->samples_ok += pb.payload.series;
        r->platform += pb.payload.platform;
        r->customer += pb.payload.customer;
        r->all += pb.payload.all;
      } else {
        std::string body = resp.body.substr(0, 200);
        RecordError(r, absl::StrCat(resp.status),
                    absl::StrCat("HTTP ", resp.status, ": ", body));
      }
      if (!resp.keep_alive) conn.reset();
    }
  }

  void Run(std::vector<WorkerResult>* results, double* elapsed_s) {
    start_ = Clock::now() + std::chrono::milliseconds(1);
    deadline_ = opts_.duration_ns >= 0
                    ? start_ + std::chrono::nanoseconds(opts_.duration_ns)
                    : Clock::time_point::max();
    results->resize(opts_.concurrency);
    std::vector<std::thread> threads;
    for (int i = 0; i < opts_.concurrency; ++i)
      threads.emplace_back([this, results, i] { Worker(&(*results)[i]); });
    for (auto& t : threads) t.join();
    *elapsed_s = std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  static void RecordError(WorkerResult* r, const std::string& kind,
                          const std::string& what) {
    ++r->errors[kind];
    if (r->first_error.empty()) r->first_error = what;
  }

  const Options& opts_;
  const Url& url_;
  const std::vector<Prebuilt>& payloads_;
  std::atomic<int64_t> next_{0};
  Clock::time_point start_, deadline_;
};

bool SelfCheck(const Payload& p, uint64_t k, std::string* error) {
  ScanResult res;
  ScanOptions so;
  if (!ScanWriteRequest(p.raw, so, &res, error)) return false;
  if (res.series != p.series || res.samples != p.series) {
    *error = absl::StrCat("payload ", k, ": scanned ", res.series,
                          " series, built ", p.series);
    return false;
  }
  if (res.unsorted_series != 0) {
    *error = absl::StrCat("payload ", k, ": unsorted labels");
    return false;
  }
  if (res.hash != p.all.hash) {
    *error = absl::StrCat("payload ", k, ": fingerprint mismatch");
    return false;
  }
#ifdef PROMRELAY_BENCH_HAVE_PROTO
  prometheus::WriteRequest req;
  if (!req.ParseFromString(p.raw)) {
    *error = absl::StrCat("payload ", k, ": protoc reference parse failed");
    return false;
  }
  if (static_cast<uint32_t>(req.timeseries_size()) != p.series) {
    *error = absl::StrCat("payload ", k, ": reference saw ",
                          req.timeseries_size(), " series");
    return false;
  }
  uint64_t labels = 0;
  for (const auto& ts : req.timeseries()) {
    labels += ts.labels_size();
    if (ts.samples_size() != 1) {
      *error = absl::StrCat("payload ", k, ": series without one sample");
      return false;
    }
  }
  if (labels != res.labels) {
    *error = absl::StrCat("payload ", k, ": reference label count differs");
    return false;
  }
#endif
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  auto need = [&](int& i) -> std::string_view {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "loadgen: %s needs a value\n", argv[i]);
      std::exit(2);
    }
    return argv[++i];
  };
  auto bad = [&](std::string_view flag) {
    std::fprintf(stderr, "loadgen: bad value for %.*s\n",
                 static_cast<int>(flag.size()), flag.data());
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--url") {
      o.url = need(i);
    } else if (a == "-c") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.concurrency) || o.concurrency < 1)
        bad(a);
    } else if (a == "-rate" || a == "--rate") {
      if (!absl::SimpleAtod(AV(need(i)), &o.rate) || o.rate < 0) bad(a);
    } else if (a == "-d" || a == "--duration") {
      if (!ParseDurationNs(need(i), &o.duration_ns)) bad(a);
    } else if (a == "-n") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.requests) || o.requests < 0) bad(a);
    } else if (a == "--timeout") {
      if (!ParseDurationNs(need(i), &o.timeout_ns) || o.timeout_ns <= 0) bad(a);
    } else if (a == "--header") {
      o.headers.emplace_back(need(i));
    } else if (a == "--series") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.gen.distinct_series) ||
          o.gen.distinct_series == 0)
        bad(a);
    } else if (a == "--batch") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.gen.series_per_request) ||
          o.gen.series_per_request == 0)
        bad(a);
    } else if (a == "--rounds") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.gen.rounds) || o.gen.rounds == 0)
        bad(a);
    } else if (a == "--start-ts") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.gen.start_timestamp_ms)) bad(a);
      o.start_ts_given = true;
    } else if (a == "--interval-ms") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.gen.scrape_interval_ms)) bad(a);
    } else if (a == "--seed") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.gen.seed)) bad(a);
    } else if (a == "--expect") {
      o.expect = true;
    } else if (a == "--dump") {
      o.dump_dir = need(i);
    } else if (a == "--print-series") {
      if (!absl::SimpleAtoi(AV(need(i)), &o.print_series)) bad(a);
    } else if (a == "--self-check") {
      o.self_check = true;
    } else if (a == "--out") {
      o.out_file = need(i);
    } else if (a == "--fail-on-error") {
      o.fail_on_error = true;
    } else if (a == "-q") {
      o.quiet = true;
    } else {
      std::fprintf(stderr, "loadgen: unknown flag %s (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (!o.start_ts_given) {
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    int64_t iv = o.gen.scrape_interval_ms > 0 ? o.gen.scrape_interval_ms : 1;
    o.gen.start_timestamp_ms =
        now_ms / iv * iv - static_cast<int64_t>(o.gen.rounds) * iv;
  }
  if (o.print_series >= 0) {
    StarformGenerator gen(o.gen);
    for (int64_t i = 0; i < o.print_series; ++i) {
      GenSeries s = gen.MakeSeries(static_cast<uint64_t>(i));
      std::string line = "{";
      for (const auto& [name, value] : s.labels) {
        if (line.size() > 1) line += ",";
        absl::StrAppend(&line, name, "=\"", value, "\"");
      }
      absl::StrAppend(&line, "} ", StarformGenerator::Value(s, 0), "\n");
      std::fputs(line.c_str(), stdout);
    }
    return 0;
  }
  const bool sending = !o.expect && o.dump_dir.empty();
  Url url;
  if (sending) {
    std::string err;
    if (o.url.empty()) {
      std::fprintf(stderr, "loadgen: --url is required (see --help)\n");
      return 2;
    }
    if (!ParseUrl(o.url, &url, &err)) {
      std::fprintf(stderr, "loadgen: --url: %s\n", err.c_str());
      return 2;
    }
    if (o.duration_ns < 0 && o.requests < 0) o.duration_ns = 10'000'000'000;
  }

  const auto t0 = Clock::now();
  StarformGenerator gen(o.gen);
  gen.Prepare();
  uint64_t n_payloads = gen.num_payloads();
  if ((o.expect || !o.dump_dir.empty()) && o.requests >= 0)
    n_payloads = std::min<uint64_t>(n_payloads, o.requests);
  const bool keep_raw = o.self_check || !o.dump_dir.empty();
  std::vector<Prebuilt> payloads(n_payloads);
  {
    // Encoding and compressing are independent per payload: use the cores.
    std::atomic<uint64_t> next{0};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency());
         ++t) {
      pool.emplace_back([&] {
        for (uint64_t k; (k = next.fetch_add(1)) < n_payloads;)
          payloads[k].payload = gen.Build(k, keep_raw);
      });
    }
    for (auto& th : pool) th.join();
  }
  uint64_t compressed_bytes = 0, raw_bytes = 0;
  for (uint64_t k = 0; k < n_payloads; ++k) {
    Prebuilt& pb = payloads[k];
    compressed_bytes += pb.payload.compressed.size();
    raw_bytes += pb.payload.raw_size;
    if (o.self_check) {
      std::string err;
      if (!SelfCheck(pb.payload, k, &err)) {
        std::fprintf(stderr, "loadgen: self-check failed: %s\n", err.c_str());
        return 1;
      }
      pb.payload.raw.clear();
      pb.payload.raw.shrink_to_fit();
    }
    if (sending) {
      pb.head = absl::StrCat("POST ", url.path, " HTTP/1.1\r\nHost: ", url.host,
                             ":", url.port,
                             "\r\nContent-Type: application/x-protobuf\r\n"
                             "Content-Encoding: snappy\r\n"
                             "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                             "User-Agent: promrelay-loadgen\r\n");
      for (const auto& h : o.headers) absl::StrAppend(&pb.head, h, "\r\n");
      absl::StrAppend(&pb.head,
                      "Content-Length: ", pb.payload.compressed.size(),
                      "\r\n\r\n");
    }
  }
  const double gen_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!o.quiet) {
    std::fprintf(
        stderr,
        "loadgen: %llu payloads of <=%u series (%llu distinct, %u "
        "rounds) in %.2fs; avg %.0f KiB compressed, %.0f KiB raw\n",
        static_cast<unsigned long long>(n_payloads), o.gen.series_per_request,
        static_cast<unsigned long long>(o.gen.distinct_series), o.gen.rounds,
        gen_s, compressed_bytes / 1024.0 / std::max<uint64_t>(n_payloads, 1),
        raw_bytes / 1024.0 / std::max<uint64_t>(n_payloads, 1));
  }

  if (o.expect || !o.dump_dir.empty()) {
    Expectation platform, customer, all;
    uint64_t samples = 0;
    for (const auto& pb : payloads) {
      platform += pb.payload.platform;
      customer += pb.payload.customer;
      all += pb.payload.all;
      samples += pb.payload.series;
    }
    std::string json = absl::StrCat(
        R"({"payloads":)", n_payloads, R"(,"samples":)", samples,
        R"(,"start_ts_ms":)", o.gen.start_timestamp_ms, R"(,"expected":)",
        ExpectJson(platform, customer, all), "}\n");
    if (!o.dump_dir.empty()) {
      mkdir(o.dump_dir.c_str(), 0755);
      for (uint64_t k = 0; k < n_payloads; ++k) {
        std::string base = absl::StrFormat("%s/payload-%05d", o.dump_dir, k);
        std::ofstream(base + ".snappy", std::ios::binary)
            << payloads[k].payload.compressed;
        std::ofstream(base + ".pb", std::ios::binary)
            << payloads[k].payload.raw;
      }
      std::ofstream(o.dump_dir + "/expect.json") << json;
    }
    std::fputs(json.c_str(), stdout);
    return 0;
  }

  std::vector<WorkerResult> results;
  double elapsed = 0;
  Driver driver(o, url, payloads);
  driver.Run(&results, &elapsed);

  WorkerResult total;
  for (auto& r : results) {
    total.hist.Merge(r.hist);
    total.requests += r.requests;
    total.ok += r.ok;
    total.samples_ok += r.samples_ok;
    total.samples_attempted += r.samples_attempted;
    total.bytes += r.bytes;
    total.late += r.late;
    total.platform += r.platform;
    total.customer += r.customer;
    total.all += r.all;
    for (auto& [k, v] : r.errors) total.errors[k] += v;
    if (total.first_error.empty()) total.first_error = r.first_error;
  }
  std::string errors = "{";
  uint64_t n_errors = 0;
  for (auto& [k, v] : total.errors) {
    if (errors.size() > 1) errors += ",";
    absl::StrAppend(&errors, "\"", k, "\":", v);
    n_errors += v;
  }
  errors += "}";
  auto ms = [](uint64_t ns) { return ns / 1e6; };
  std::string escaped_err;
  for (char c : total.first_error) {
    if (c == '"' || c == '\\') escaped_err += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped_err += c;
  }
  std::string json = absl::StrFormat(
      R"({"url":"%s","concurrency":%d,"rate":%g,"elapsed_s":%.3f,)"
      R"("requests":%d,"ok":%d,"errors_total":%d,"errors":%s,"first_error":"%s",)"
      R"("samples_sent":%d,"samples_attempted":%d,"samples_per_s":%.1f,)"
      R"("requests_per_s":%.2f,"bytes_sent":%d,"late_starts":%d,)"
      R"("latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f,)"
      R"("max":%.3f,"mean":%.3f},"payloads":%d,"distinct_series":%d,)"
      R"("start_ts_ms":%d,"expected":%s})",
      o.url, o.concurrency, o.rate, elapsed, total.requests, total.ok, n_errors,
      errors, escaped_err, total.samples_ok, total.samples_attempted,
      elapsed > 0 ? total.samples_ok / elapsed : 0,
      elapsed > 0 ? total.ok / elapsed : 0, total.bytes, total.late,
      ms(total.hist.Quantile(0.5)), ms(total.hist.Quantile(0.9)),
      ms(total.hist.Quantile(0.99)), ms(total.hist.Quantile(0.999)),
      ms(total.hist.max()), total.hist.mean() / 1e6, n_payloads,
      o.gen.distinct_series, o.gen.start_timestamp_ms,
      ExpectJson(total.platform, total.customer, total.all));
  std::puts(json.c_str());
  if (!o.out_file.empty()) std::ofstream(o.out_file) << json << "\n";
  if (!o.quiet) {
    std::fprintf(stderr,
                 "loadgen: %llu requests (%llu errors) in %.2fs: %.0f "
                 "samples/s, p50 %.2f ms, p99 %.2f ms\n",
                 static_cast<unsigned long long>(total.requests),
                 static_cast<unsigned long long>(n_errors), elapsed,
                 elapsed > 0 ? total.samples_ok / elapsed : 0,
                 ms(total.hist.Quantile(0.5)), ms(total.hist.Quantile(0.99)));
  }
  if (o.fail_on_error && n_errors > 0) {
    std::fprintf(stderr, "loadgen: %llu requests failed; first: %s\n",
                 static_cast<unsigned long long>(n_errors),
                 total.first_error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace promrelay::bench

int main(int argc, char** argv) { return promrelay::bench::Main(argc, argv); }
