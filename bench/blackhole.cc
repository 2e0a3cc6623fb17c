// promrelay-blackhole: a remote_write sink for benchmarks and tests. Accepts
// RW1 POSTs on any path, replies 204, and counts per path what arrived
// (requests, series, samples, malformed bodies, an order-independent
// fingerprint of the samples, series carrying watched labels). Exposes the
// counts as JSON on GET /stats and as Prometheus text on GET /metrics;
// POST /reset clears them. One thread per connection: senders keep few
// long-lived connections, and blocking I/O keeps the per-request cost low.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/http_lite.h"
#include "bench/rw_scan.h"
#include "bench/strutil.h"
#include "snappy.h"

namespace promrelay::bench {
namespace {

constexpr char kUsage[] = R"(usage: promrelay-blackhole [options]
A remote_write sink that counts what it receives.
  --listen HOST:PORT   (default 127.0.0.1:0, a free port)
  --port-file FILE     write the bound port to FILE once listening
  --watch-labels a,b   count series carrying any of these label names
  --status CODE        reply CODE to writes instead of 204 (error tests)
  --max-body BYTES     largest accepted body (default 64 MiB)
Endpoints: POST <any path> (RW1, snappy), GET /stats, GET /metrics,
POST /reset, GET /-/healthy.
)";

struct PathStats {
  std::atomic<uint64_t> requests{0}, malformed{0}, series{0}, samples{0},
      histograms{0}, exemplars{0}, metadata{0}, labels{0}, bytes{0},
      raw_bytes{0}, hash{0}, watched{0}, unsorted{0};
  std::mutex mu;
  std::string last_error;

  void Reset() {
    for (auto* a :
         {&requests, &malformed, &series, &samples, &histograms, &exemplars,
          &metadata, &labels, &bytes, &raw_bytes, &hash, &watched, &unsorted})
      a->store(0);
    std::lock_guard<std::mutex> l(mu);
    last_error.clear();
  }
};

struct Server {
  ScanOptions scan;
  int status = 204;
  size_t max_body = 64 << 20;
  std::mutex mu;
  std::map<std::string, std::unique_ptr<PathStats>> paths;
  std::atomic<uint64_t> connections{0};
  std::chrono::steady_clock::time_point started =
      std::chrono::steady_clock::now();

  PathStats* Stats(std::string_view path) {
    std::lock_guard<std::mutex> l(mu);
    auto& p = paths[std::string(path)];
    if (!p) p = std::make_unique<PathStats>();
    return p.get();
  }
};

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
    } else {
      out += c;
    }
  }
  return out;
}

std::string StatsJson(Server& s) {
  std::lock_guard<std::mutex> l(s.mu);
  std::string out =
      absl::StrFormat(R"({"uptime_s":%.3f,"connections":%d,"paths":{)",
                      std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - s.started)
                          .count(),
                      s.connections.load());
  bool first = true;
  for (auto& [path, p] : s.paths) {
    if (!first) out += ",";
    first = false;
    std::string last_error;
    {
      std::lock_guard<std::mutex> pl(p->mu);
      last_error = p->last_error;
    }
    absl::StrAppend(
        &out, "\"", JsonEscape(path), "\":",
        absl::StrFormat(
            R"({"requests":%d,"malformed":%d,"series":%d,"samples":%d,)"
            R"("histograms":%d,"exemplars":%d,"metadata":%d,"labels":%d,)"
            R"("bytes":%d,"raw_bytes":%d,"hash":"%016x",)"
            R"("watched_label_series":%d,"unsorted_series":%d,"last_error":"%s"})",
            p->requests.load(), p->malformed.load(), p->series.load(),
            p->samples.load(), p->histograms.load(), p->exemplars.load(),
            p->metadata.load(), p->labels.load(), p->bytes.load(),
            p->raw_bytes.load(), p->hash.load(), p->watched.load(),
            p->unsorted.load(), JsonEscape(last_error)));
  }
  out += "}}\n";
  return out;
}

std::string MetricsText(Server& s) {
  std::lock_guard<std::mutex> l(s.mu);
  std::string out;
  struct M {
    const char* name;
    const char* help;
    std::atomic<uint64_t> PathStats::*field;
  };
  static const M kMetrics[] = {
      {"blackhole_requests_total", "Write requests received.",
       &PathStats::requests},
      {"blackhole_malformed_requests_total",
       "Write requests whose body did not decode.", &PathStats::malformed},
      {"blackhole_series_total", "Time series received.", &PathStats::series},
      {"blackhole_samples_total", "Float samples received.",
       &PathStats::samples},
      {"blackhole_histograms_total", "Native histogram samples received.",
       &PathStats::histograms},
      {"blackhole_watched_label_series_total",
       "Series that carried a watched label.", &PathStats::watched},
      {"blackhole_received_bytes_total", "Compressed body bytes received.",
       &PathStats::bytes},
  };
  for (const M& m : kMetrics) {
    absl::StrAppend(&out, "# HELP ", m.name, " ", m.help, "\n# TYPE ", m.name,
                    " counter\n");
    for (auto& [path, p] : s.paths)
      absl::StrAppend(&out, m.name, "{path=\"", JsonEscape(path), "\"} ",
                      ((*p).*(m.field)).load(), "\n");
  }
  absl::StrAppend(&out,
                  "# HELP blackhole_connections_total Connections accepted.\n"
                  "# TYPE blackhole_connections_total counter\n"
                  "blackhole_connections_total ",
                  s.connections.load(), "\n");
  return out;
}

bool Reply(int fd, int code, std::string_view reason,
           std::string_view content_type, std::string_view body,
           bool keep_alive) {
  std::string head = absl::StrCat("HTTP/1.1 ", code, " ");
  head.append(reason);
  head += "\r\n";
  if (code != 204) {
    head += "Content-Type: ";
    head.append(content_type);
    absl::StrAppend(&head, "\r\nContent-Length: ", body.size(), "\r\n");
  }
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return WriteAll(fd, head, code == 204 ? std::string_view() : body);
}

void HandleWrite(Server& s, const Message& m, std::string_view path,
                 std::string* raw, int* code, std::string* msg) {
  PathStats* st = s.Stats(path);
  st->requests.fetch_add(1, std::memory_order_relaxed);
  st->bytes.fetch_add(m.body.size(), std::memory_order_relaxed);
  auto fail = [&](std::string why) {
    st->malformed.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> l(st->mu);
      st->last_error = why;
    }
    *code = 400;
    *msg = why;
  };
  size_t len = 0;
  if (!snappy::GetUncompressedLength(m.body.data(), m.body.size(), &len)) {
    return fail("snappy: bad block header");
  }
  if (len > (size_t{512} << 20)) return fail("snappy: declared size too big");
  raw->resize(len);
  if (!snappy::RawUncompress(m.body.data(), m.body.size(), raw->data())) {
    return fail("snappy: corrupt block");
  }
  ScanResult r;
  std::string err;
  if (!ScanWriteRequest(*raw, s.scan, &r, &err))
    return fail("protobuf: " + err);
  st->raw_bytes.fetch_add(len, std::memory_order_relaxed);
  st->series.fetch_add(r.series, std::memory_order_relaxed);
  st->samples.fetch_add(r.samples, std::memory_order_relaxed);
  st->histograms.fetch_add(r.histograms, std::memory_order_relaxed);
  st->exemplars.fetch_add(r.exemplars, std::memory_order_relaxed);
  st->metadata.fetch_add(r.metadata, std::memory_order_relaxed);
  st->labels.fetch_add(r.labels, std::memory_order_relaxed);
  st->hash.fetch_add(r.hash, std::memory_order_relaxed);
  st->watched.fetch_add(r.watched_label_series, std::memory_order_relaxed);
  st->unsorted.fetch_add(r.unsorted_series, std::memory_order_relaxed);
  *code = s.status;
}

void ServeConnection(Server* s, int fd) {
  s->connections.fetch_add(1, std::memory_order_relaxed);
  Connection conn(fd);
  Message m;
  std::string error, raw;
  for (;;) {
    if (!conn.ReadRequest(&m, s->max_body, &error)) {
      if (error == "body too large") {
        Reply(fd, 413, "Payload Too Large", "text/plain", error + "\n", false);
      } else if (!error.empty() && error.find("read:") != 0 &&
                 error.find("EOF") == std::string::npos) {
        Reply(fd, 400, "Bad Request", "text/plain", error + "\n", false);
      }
      return;
    }
    std::string_view target = m.target;
    std::string_view path = target.substr(0, target.find('?'));
    bool ok;
    if (m.method == "POST" && path == "/reset") {
      std::lock_guard<std::mutex> l(s->mu);
      for (auto& [p, st] : s->paths) st->Reset();
      ok = Reply(fd, 200, "OK", "text/plain", "reset\n", m.keep_alive);
    } else if (m.method == "POST" || m.method == "PUT") {
      int code = 204;
      std::string msg;
      HandleWrite(*s, m, path, &raw, &code, &msg);
      if (code == 204) {
        ok = Reply(fd, 204, "No Content", "", "", m.keep_alive);
      } else {
        ok =
            Reply(fd, code, code == 400 ? "Bad Request" : "Error", "text/plain",
                  msg.empty() ? "injected error\n" : msg + "\n", m.keep_alive);
      }
    } else if (m.method == "GET" && path == "/stats") {
      ok =
          Reply(fd, 200, "OK", "application/json", StatsJson(*s), m.keep_alive);
    } else if (m.method == "GET" && path == "/metrics") {
      ok = Reply(fd, 200, "OK", "text/plain; version=0.0.4", MetricsText(*s),
                 m.keep_alive);
    } else if (m.method == "GET" &&
               (path == "/-/healthy" || path == "/-/ready" || path == "/")) {
      ok = Reply(fd, 200, "OK", "text/plain", "ok\n", m.keep_alive);
    } else {
      ok = Reply(fd, 404, "Not Found", "text/plain", "not found\n",
                 m.keep_alive);
    }
    if (!ok || !m.keep_alive) return;
  }
}

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", port_file;
  Server server;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto need = [&]() -> std::string_view {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "blackhole: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--listen") {
      listen = need();
    } else if (a == "--port-file") {
      port_file = need();
    } else if (a == "--watch-labels") {
      for (auto w : absl::StrSplit(AV(need()), ',', absl::SkipEmpty()))
        server.scan.watch_labels.emplace_back(w);
    } else if (a == "--status") {
      if (!absl::SimpleAtoi(AV(need()), &server.status) ||
          server.status < 200 || server.status > 599) {
        std::fprintf(stderr, "blackhole: bad --status\n");
        return 2;
      }
    } else if (a == "--max-body") {
      if (!absl::SimpleAtoi(AV(need()), &server.max_body)) {
        std::fprintf(stderr, "blackhole: bad --max-body\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "blackhole: unknown flag %s (see --help)\n",
                   argv[i]);
      return 2;
    }
  }
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    std::fprintf(stderr, "blackhole: --listen wants HOST:PORT\n");
    return 2;
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  int bound = 0;
  int lfd = Listen(host, port, &bound);
  if (lfd < 0) {
    std::fprintf(stderr, "blackhole: listen %s: %s\n", listen.c_str(),
                 std::strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << bound << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::fprintf(stderr, "blackhole: listening on %s:%d\n", host.c_str(), bound);
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      std::fprintf(stderr, "blackhole: accept: %s\n", std::strerror(errno));
      return 1;
    }
    std::thread(ServeConnection, &server, fd).detach();
  }
}

}  // namespace
}  // namespace promrelay::bench

int main(int argc, char** argv) { return promrelay::bench::Main(argc, argv); }
