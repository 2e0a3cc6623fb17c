#include "proxy/server/server.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <openssl/x509.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "proxy/pipeline/pipeline.h"
#include "tests/pipeline/test_util.h"

namespace promrelay::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using testing::FakeQueue;

struct Response {
  int code = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  bool keep_alive = false;
};

// One client connection: requests go over it one after the other.
class Client {
 public:
  explicit Client(int port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  Response Send(http::verb method, const std::string& target,
                const std::string& body = "",
                std::map<std::string, std::string> headers = {},
                bool chunked = false) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (chunked) {
      req.chunked(true);
    } else {
      req.prepare_payload();
    }
    stream_.expires_after(std::chrono::seconds(30));
    http::write(stream_, req);
    return Read();
  }

  Response Read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    stream_.expires_after(std::chrono::seconds(30));
    http::read(stream_, buffer_, parser);
    Response r;
    const auto& res = parser.get();
    r.code = res.result_int();
    r.body = res.body();
    r.keep_alive = res.keep_alive();
    for (const auto& f : res) {
      r.headers[std::string(f.name_string())] = std::string(f.value());
    }
    return r;
  }

  // Writes raw bytes (for requests a well-behaved client would not send).
  void WriteRaw(const std::string& bytes) {
    asio::write(stream_.socket(), asio::buffer(bytes));
  }

  // True when the server closed the connection (reads EOF).
  bool ServerClosed() {
    stream_.expires_after(std::chrono::seconds(10));
    beast::error_code ec;
    char c;
    for (;;) {
      stream_.socket().read_some(asio::buffer(&c, 1), ec);
      if (ec)
        return ec == asio::error::eof || ec == asio::error::connection_reset;
    }
  }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

const std::map<std::string, std::string> kRw1Headers = {
    {"Content-Type", "application/x-protobuf"},
    {"Content-Encoding", "snappy"},
    {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

prometheus::WriteRequest SmallRequest(const std::string& job = "shuttle",
                                      int series = 3) {
  prometheus::WriteRequest req;
  for (int i = 0; i < series; ++i) {
    testing::AddSeries(&req, {{"__name__", "m"},
                              {"i", std::to_string(i)},
                              {"job", job},
                              {"project_id", "p"}});
  }
  return req;
}

struct Fixture {
  explicit Fixture(std::function<void(config::Config&)> tweak = nullptr,
                   std::optional<config::ServerTls> tls = std::nullopt) {
    cfg = testing::StarformConfig();
    cfg->server.listen_address = "127.0.0.1:0";
    cfg->server.io_threads = 2;
    cfg->server.max_request_bytes = 4096;
    cfg->server.tls = tls;
    if (tweak) tweak(*cfg);
    std::vector<pipeline::DestinationQueues> qs;
    for (const auto& d : cfg->remote_write) {
      auto q = std::make_shared<FakeQueue>();
      fakes[d.name] = q;
      qs.push_back({d.name, {q}, 0, {}});
    }
    pipe = std::make_unique<pipeline::Pipeline>(&registry);
    REQUIRE(pipe->Update(cfg, qs).ok());
    ServerOptions opts;
    opts.registry = &registry;
    opts.reload = [this] {
      ++reloads;
      return reload_status;
    };
    server = std::make_unique<Server>(pipe.get(), opts);
    REQUIRE(server->Start(cfg->server).ok());
    REQUIRE(server->port() > 0);
  }
  ~Fixture() { server->Stop(absl::Now() + absl::Seconds(5)); }

  Response Post(const std::string& body,
                std::map<std::string, std::string> headers = kRw1Headers,
                const std::string& path = "/api/v1/write") {
    Client c(server->port());
    return c.Send(http::verb::post, path, body, std::move(headers));
  }
  Response Get(const std::string& path) {
    Client c(server->port());
    return c.Send(http::verb::get, path);
  }
  size_t Queued(const std::string& dest) {
    return fakes[dest]->Series().size();
  }

  std::shared_ptr<config::Config> cfg;
  metrics::Registry registry;
  std::map<std::string, std::shared_ptr<FakeQueue>> fakes;
  std::unique_ptr<pipeline::Pipeline> pipe;
  std::unique_ptr<Server> server;
  int reloads = 0;
  absl::Status reload_status;
};

TEST_CASE("HttpStatusFor maps pipeline codes") {
  CHECK(HttpStatusFor(absl::OkStatus()) == 204);
  CHECK(HttpStatusFor(absl::InvalidArgumentError("")) == 400);
  CHECK(HttpStatusFor(absl::UnauthenticatedError("")) == 401);
  CHECK(HttpStatusFor(absl::OutOfRangeError("")) == 413);
  CHECK(HttpStatusFor(absl::FailedPreconditionError("")) == 415);
  CHECK(HttpStatusFor(absl::ResourceExhaustedError("")) == 429);
  CHECK(HttpStatusFor(absl::UnavailableError("")) == 503);
  CHECK(HttpStatusFor(absl::DataLossError("")) == 500);
}

TEST_CASE("write endpoints accept remote write 1.0") {
  Fixture f;
  const std::string body = testing::Body(SmallRequest());
  for (const char* path : {"/api/v1/write", "/api/v1/push", "/api/prom/push"}) {
    Response r = f.Post(body, kRw1Headers, path);
    CHECK(r.code == 204);
    CHECK(r.body.empty());
  }
  CHECK(f.Queued("grafana-cloud") == 9);
  for (const auto& ts : f.fakes["grafana-cloud"]->Series()) {
    for (const auto& l : ts.labels()) CHECK(l.name() != "project_id");
  }
  // Missing Content-Type and Content-Encoding: accepted as RW1 + snappy.
  CHECK(f.Post(body, {}).code == 204);
  // The 2.0-spec name of the 1.0 message is fine too.
  CHECK(f.Post(body, {{"Content-Type",
                       "application/x-protobuf;proto=prometheus.WriteRequest"}})
            .code == 204);
  CHECK(f.Queued("grafana-cloud") == 15);
}

TEST_CASE("unsupported content types and encodings get 415") {
  Fixture f;
  const std::string body = testing::Body(SmallRequest());
  Response rw2 = f.Post(
      body, {{"Content-Type",
              "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
             {"Content-Encoding", "snappy"},
             {"X-Prometheus-Remote-Write-Version", "2.0.0"}});
  CHECK(rw2.code == 415);
  CHECK(rw2.body.find("remote write 2.0") != std::string::npos);
  CHECK(rw2.headers["Content-Type"].find("text/plain") == 0);

  Response json = f.Post(body, {{"Content-Type", "application/json"}});
  CHECK(json.code == 415);
  CHECK(json.body.find("application/json") != std::string::npos);

  for (const char* enc : {"gzip", "zstd"}) {
    Response r = f.Post(body, {{"Content-Type", "application/x-protobuf"},
                               {"Content-Encoding", enc}});
    CHECK(r.code == 415);
    CHECK(r.body.find(enc) != std::string::npos);
  }
  CHECK(f.Queued("grafana-cloud") == 0);
}

TEST_CASE("malformed bodies get 400 and the connection keeps working") {
  Fixture f;
  Client c(f.server->port());
  Response bad = c.Send(http::verb::post, "/api/v1/write", "not snappy at all",
                        kRw1Headers);
  CHECK(bad.code == 400);
  CHECK(!bad.body.empty());
  CHECK(bad.body.back() == '\n');
  CHECK(bad.body.find('\n') == bad.body.size() - 1);  // one line
  Response garbage = c.Send(http::verb::post, "/api/v1/write",
                            testing::Compress("\x0a\x05\x0a\x03"), kRw1Headers);
  CHECK(garbage.code == 400);
  CHECK(garbage.body.find("malformed") != std::string::npos);
  Response good = c.Send(http::verb::post, "/api/v1/write",
                         testing::Body(SmallRequest()), kRw1Headers);
  CHECK(good.code == 204);
  CHECK(good.keep_alive);
  CHECK(f.Queued("grafana-cloud") == 3);
}

TEST_CASE("oversized bodies get 413") {
  Fixture f([](config::Config& c) { c.server.max_decompressed_bytes = 2000; });
  SECTION("by Content-Length, without reading the body") {
    Client c(f.server->port());
    Response r = c.Send(http::verb::post, "/api/v1/write",
                        std::string(5000, 'x'), kRw1Headers);
    CHECK(r.code == 413);
    CHECK(r.body.find("server.max_request_bytes (4096)") != std::string::npos);
    CHECK_FALSE(r.keep_alive);
    CHECK(c.ServerClosed());
  }
  SECTION("chunked, no Content-Length") {
    Client c(f.server->port());
    Response r = c.Send(http::verb::post, "/api/v1/write",
                        std::string(5000, 'x'), kRw1Headers, /*chunked=*/true);
    CHECK(r.code == 413);
  }
  SECTION("decompressed size") {
    prometheus::WriteRequest req;
    testing::AddSeries(&req, {{"job", std::string(100, 'a')}}, 200);
    const std::string body = testing::Body(req);
    REQUIRE(body.size() < 4096);
    Response r = f.Post(body);
    CHECK(r.code == 413);
    CHECK(r.body.find("server.max_decompressed_bytes") != std::string::npos);
  }
  // Still serving.
  CHECK(f.Post(testing::Body(SmallRequest())).code == 204);
}

TEST_CASE("bodies above Beast's default limit but within ours are read") {
  Fixture f([](config::Config& c) { c.server.max_request_bytes = 8 << 20; });
  // Over Beast's 1 MiB default request body limit, even compressed:
  // random label values do not compress.
  std::mt19937 rng(42);
  prometheus::WriteRequest req;
  for (int i = 0; i < 2000; ++i) {
    std::string pad(1000, ' ');
    for (char& c : pad) c = static_cast<char>('!' + rng() % 90);
    testing::AddSeries(&req, {{"__name__", "big"},
                              {"i", std::to_string(i)},
                              {"job", "shuttle"},
                              {"pad", pad}});
  }
  const std::string body = testing::Body(req);
  REQUIRE(body.size() > (1 << 20));
  Response r = f.Post(body);
  CHECK(r.code == 204);
  CHECK(f.Queued("grafana-cloud") == 2000);
  Response junk = f.Post(std::string(2 << 20, 'x'));
  CHECK(junk.code == 400);
  CHECK(junk.body.find("body limit") == std::string::npos);
}

TEST_CASE("limit violations name the limit") {
  Fixture f([](config::Config& c) {
    c.server.max_series_per_request = 2;
    c.server.max_label_value_length = 8;
  });
  Response many = f.Post(testing::Body(SmallRequest("shuttle", 3)));
  CHECK(many.code == 413);
  CHECK(many.body.find("server.max_series_per_request") != std::string::npos);
  prometheus::WriteRequest req;
  testing::AddSeries(&req, {{"job", "0123456789"}});
  Response longv = f.Post(testing::Body(req));
  CHECK(longv.code == 400);
  CHECK(longv.body.find("server.max_label_value_length") != std::string::npos);
}

TEST_CASE("a full queue gets 429 with Retry-After, a closed one 503") {
  Fixture f;
  f.fakes["grafana-cloud"]->next_status = absl::ResourceExhaustedError("full");
  Response r = f.Post(testing::Body(SmallRequest()));
  CHECK(r.code == 429);
  CHECK(r.headers["Retry-After"] == "5");
  CHECK(r.body.find("grafana-cloud") != std::string::npos);
  f.fakes["grafana-cloud"]->next_status = absl::UnavailableError("closed");
  CHECK(f.Post(testing::Body(SmallRequest())).code == 503);
  f.fakes["grafana-cloud"]->next_status = absl::DataLossError("disk");
  CHECK(f.Post(testing::Body(SmallRequest())).code == 500);
}

TEST_CASE("unknown paths 404, wrong methods 405") {
  Fixture f;
  Response nf = f.Get("/nope");
  CHECK(nf.code == 404);
  Client c(f.server->port());
  Response get_write = c.Send(http::verb::get, "/api/v1/write");
  CHECK(get_write.code == 405);
  CHECK(get_write.headers["Allow"] == "POST");
  Response post_metrics = c.Send(http::verb::post, "/metrics", "x");
  CHECK(post_metrics.code == 405);
  CHECK(post_metrics.headers["Allow"] == "GET");
  Response get_reload = c.Send(http::verb::get, "/-/reload");
  CHECK(get_reload.code == 405);
  CHECK(f.reloads == 0);
}

TEST_CASE("health, readiness and metrics") {
  Fixture f;
  Response h = f.Get("/-/healthy");
  CHECK(h.code == 200);
  CHECK(h.body == "OK\n");
  CHECK(f.Get("/-/ready").code == 200);
  CHECK(f.Post(testing::Body(SmallRequest())).code == 204);
  CHECK(f.Post("junk").code == 400);
  Response m = f.Get("/metrics");
  CHECK(m.code == 200);
  CHECK(m.headers["Content-Type"] ==
        "text/plain; version=0.0.4; charset=utf-8");
  CHECK(m.body.find("# TYPE promrelay_requests_total counter") !=
        std::string::npos);
  CHECK(m.body.find("promrelay_requests_total{code=\"204\",path=\"/api/v1/"
                    "write\"} 1\n") != std::string::npos);
  CHECK(m.body.find("promrelay_requests_total{code=\"400\",path=\"/api/v1/"
                    "write\"} 1\n") != std::string::npos);
  CHECK(m.body.find("promrelay_request_duration_seconds_bucket{path=\"/api/v1/"
                    "write\",le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(m.body.find("promrelay_received_samples_total 3\n") !=
        std::string::npos);
  CHECK(m.body.find("# TYPE promrelay_request_duration_seconds histogram") !=
        std::string::npos);
}

TEST_CASE("reload endpoint") {
  Fixture f;
  Client c(f.server->port());
  Response ok = c.Send(http::verb::post, "/-/reload");
  CHECK(ok.code == 200);
  CHECK(f.reloads == 1);
  f.reload_status = absl::InvalidArgumentError("3:5: remote_write[0].url: bad");
  Response bad = c.Send(http::verb::post, "/-/reload");
  CHECK(bad.code == 500);
  CHECK(bad.body.find("remote_write[0].url: bad") != std::string::npos);
  CHECK(f.reloads == 2);
  // Still serving writes after a failed reload.
  CHECK(c.Send(http::verb::post, "/api/v1/write", testing::Body(SmallRequest()),
               kRw1Headers)
            .code == 204);
}

TEST_CASE("keep-alive serves many requests on one connection") {
  Fixture f;
  Client c(f.server->port());
  for (int i = 0; i < 20; ++i) {
    Response r = c.Send(http::verb::post, "/api/v1/write",
                        testing::Body(SmallRequest("shuttle", 1)), kRw1Headers);
    REQUIRE(r.code == 204);
    CHECK(r.keep_alive);
  }
  CHECK(f.Queued("grafana-cloud") == 20);
  // Connection: close is honoured.
  Response last =
      c.Send(http::verb::get, "/-/healthy", "", {{"Connection", "close"}});
  CHECK(last.code == 200);
  CHECK_FALSE(last.keep_alive);
  CHECK(c.ServerClosed());
}

TEST_CASE("garbage on the wire gets 400 and a close") {
  Fixture f;
  Client c(f.server->port());
  c.WriteRaw("THIS IS NOT HTTP\r\n\r\n");
  Response r = c.Read();
  CHECK(r.code == 400);
  CHECK(c.ServerClosed());
  CHECK(f.Get("/-/healthy").code == 200);
}

TEST_CASE("Expect: 100-continue") {
  Fixture f;
  Client c(f.server->port());
  const std::string body = testing::Body(SmallRequest());
  c.WriteRaw(
      "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Type: application/x-protobuf\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  Response cont = c.Read();
  CHECK(cont.code == 100);
  c.WriteRaw(body);
  CHECK(c.Read().code == 204);
}

TEST_CASE("shutdown: ready and writes get 503, then connections close") {
  Fixture f;
  Client idle(f.server->port());
  CHECK(idle.Send(http::verb::get, "/-/ready").code == 200);
  // Once nothing is in flight, the connection waits for its next request.
  while (f.server->in_flight() > 0) std::this_thread::yield();
  f.server->BeginShutdown();
  CHECK(f.server->shutting_down());
  Response ready = idle.Send(http::verb::get, "/-/ready");
  CHECK(ready.code == 503);
  CHECK_FALSE(ready.keep_alive);
  CHECK(idle.ServerClosed());
  // New connections are refused once the acceptor is closed.
  bool refused = false;
  try {
    Client c(f.server->port());
    c.Send(http::verb::post, "/api/v1/write", testing::Body(SmallRequest()),
           kRw1Headers);
  } catch (const std::exception&) {
    refused = true;
  }
  CHECK(refused);
  f.server->Stop(absl::Now() + absl::Seconds(5));
  CHECK(f.server->in_flight() == 0);
}

TEST_CASE("Stop closes idle keep-alive connections") {
  Fixture f;
  Client idle(f.server->port());
  CHECK(idle.Send(http::verb::get, "/-/healthy").code == 200);
  f.server->Stop(absl::Now() + absl::Seconds(5));
  CHECK(idle.ServerClosed());
}

TEST_CASE("ingress auth: 401 without valid credentials, labels injected") {
  Fixture f([](config::Config& c) {
    config::ClientAuth a;
    a.name = "cluster-a";
    a.bearer_token = "token-a";
    a.inject_labels = {{"cluster_id", "a"}};
    config::ClientAuth b;
    b.name = "cluster-b";
    b.username = "user-b";
    b.password = "pass-b";
    b.inject_labels = {{"cluster_id", "b"}};
    c.server.clients = {a, b};
  });
  const std::string body = testing::Body(SmallRequest("shuttle", 1));
  auto with = [&](const std::string& authz) {
    auto h = kRw1Headers;
    if (!authz.empty()) h["Authorization"] = authz;
    return f.Post(body, h);
  };
  Response missing = with("");
  CHECK(missing.code == 401);
  CHECK(missing.body.find("missing") != std::string::npos);
  CHECK(!missing.headers["WWW-Authenticate"].empty());
  Response wrong = with("Bearer token-x");
  CHECK(wrong.code == 401);
  CHECK(wrong.body.find("token-x") == std::string::npos);  // never echoed
  CHECK(with("Basic " + absl::Base64Escape("user-b:wrong")).code == 401);
  CHECK(with("Digest abc").code == 401);
  CHECK(f.Queued("grafana-cloud") == 0);

  CHECK(with("Bearer token-a").code == 204);
  CHECK(with("Basic " + absl::Base64Escape("user-b:pass-b")).code == 204);
  auto series = f.fakes["grafana-cloud"]->Series();
  REQUIRE(series.size() == 2);
  CHECK(testing::Get(testing::LabelsOf(series[0]), "cluster_id") == "a");
  CHECK(testing::Get(testing::LabelsOf(series[1]), "cluster_id") == "b");
  // Operator endpoints need no credentials.
  CHECK(f.Get("/metrics").code == 200);
}

TEST_CASE("listen errors are reported") {
  metrics::Registry registry;
  pipeline::Pipeline p(&registry);
  ServerOptions opts;
  opts.registry = &registry;
  Server s(&p, opts);
  config::ServerConfig cfg;
  cfg.listen_address = "127.0.0.1:notaport";
  absl::Status st = s.Start(cfg);
  CHECK(absl::IsInvalidArgument(st));
  CHECK(st.message().find("server.listen_address") != absl::string_view::npos);
  Server s2(&p, opts);
  cfg.listen_address = "127.0.0.1:0";
  cfg.tls = config::ServerTls{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  st = s2.Start(cfg);
  CHECK(st.message().find("server.tls.cert_file") != absl::string_view::npos);
}

// A TLS connection to the server that trusts `ca_file`, handshake done.
struct TlsClient {
  asio::io_context ioc;
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  beast::ssl_stream<beast::tcp_stream> stream;
  TlsClient(int port, const std::string& ca_file)
      : stream(ioc, Trusting(ca_file)) {
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    stream.handshake(asio::ssl::stream_base::client);
  }

 private:
  asio::ssl::context& Trusting(const std::string& ca_file) {
    ctx.load_verify_file(ca_file);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    return ctx;
  }
};

TEST_CASE("TLS listener") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("promrelay-server-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string();
  const std::string key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  {
    Fixture f(nullptr, config::ServerTls{cert, key});
    TlsClient client(f.server->port(), cert);
    beast::ssl_stream<beast::tcp_stream>& stream = client.stream;
    http::request<http::string_body> req{http::verb::post, "/api/v1/write", 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, "application/x-protobuf");
    req.body() = testing::Body(SmallRequest());
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    CHECK(res.result_int() == 204);
    CHECK(f.Queued("grafana-cloud") == 3);
    // Plain HTTP on the TLS port is not served.
    Client plain(f.server->port());
    bool failed = false;
    try {
      plain.Send(http::verb::get, "/-/healthy");
    } catch (const std::exception&) {
      failed = true;
    }
    CHECK(failed);
  }
  std::filesystem::remove_all(dir);
}

// The subject CN of the certificate a TLS handshake with the server shows.
std::string ServedCommonName(int port, const std::string& ca_file) {
  TlsClient client(port, ca_file);
  X509* cert = SSL_get_peer_certificate(client.stream.native_handle());
  REQUIRE(cert != nullptr);
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                            sizeof cn);
  X509_free(cert);
  beast::error_code ec;
  client.stream.shutdown(ec);
  return cn;
}

TEST_CASE("the server certificate is reloaded without a restart") {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("promrelay-server-tls-reload-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string();
  const std::string key = (dir / "key.pem").string();
  auto make_cert = [&](const std::string& cn, const std::string& cert_out,
                       const std::string& key_out) {
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + cn +
        " -addext subjectAltName=IP:127.0.0.1 -keyout " + key_out + " -out " +
        cert_out + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  };
  make_cert("first", cert, key);
  {
    Fixture f(nullptr, config::ServerTls{cert, key});
    const std::string first_ca = (dir / "first.pem").string();
    std::filesystem::copy_file(cert, first_ca);
    CHECK(ServedCommonName(f.server->port(), first_ca) == "first");

    // A renewal: new files in place, then a reload.
    make_cert("second", cert, key);
    REQUIRE(f.server->StageTls(f.cfg->server).ok());
    // Staged, not in use yet: a config reload commits it only once the
    // rest of the config is applied.
    CHECK(ServedCommonName(f.server->port(), first_ca) == "first");
    f.server->CommitStagedTls();
    CHECK(ServedCommonName(f.server->port(), cert) == "second");

    // A broken renewal (the key of another certificate) is refused and the
    // served certificate stays.
    const std::string other_cert = (dir / "other.pem").string();
    const std::string other_key = (dir / "other-key.pem").string();
    make_cert("third", other_cert, other_key);
    config::ServerConfig mismatched = f.cfg->server;
    mismatched.tls = config::ServerTls{cert, other_key};
    absl::Status st = f.server->StageTls(mismatched);
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message().find("server.tls.key_file") != absl::string_view::npos);
    mismatched.tls = config::ServerTls{(dir / "missing.pem").string(), key};
    st = f.server->StageTls(mismatched);
    CHECK(st.message().find("server.tls.cert_file") != absl::string_view::npos);
    f.server->CommitStagedTls();  // nothing staged: a no-op
    CHECK(ServedCommonName(f.server->port(), cert) == "second");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace promrelay::server
