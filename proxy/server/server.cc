#include "proxy/server/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proxy/metrics/log.h"

namespace promrelay::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Bodies of the non-write endpoints are small; anything bigger is a mistake.
constexpr uint64_t kMaxOtherBodyBytes = 1 << 20;
constexpr uint32_t kMaxHeaderBytes = 64 << 10;
constexpr size_t kBodyReadBytes = 64 << 10;
// How long a connection being closed may drain what the client still sends,
// so our response is not destroyed by a TCP reset.
constexpr auto kLingerTime = std::chrono::seconds(2);

enum class Endpoint { kWrite, kMetrics, kHealthy, kReady, kReload, kUnknown };

struct Route {
  Endpoint endpoint = Endpoint::kUnknown;
  std::string_view label = "other";  // the path label of the metrics
};

Route Match(std::string_view target) {
  const size_t q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  if (target == "/api/v1/write") return {Endpoint::kWrite, "/api/v1/write"};
  if (target == "/api/v1/push") return {Endpoint::kWrite, "/api/v1/push"};
  if (target == "/api/prom/push") return {Endpoint::kWrite, "/api/prom/push"};
  if (target == "/metrics") return {Endpoint::kMetrics, "/metrics"};
  if (target == "/-/healthy") return {Endpoint::kHealthy, "/-/healthy"};
  if (target == "/-/ready") return {Endpoint::kReady, "/-/ready"};
  if (target == "/-/reload") return {Endpoint::kReload, "/-/reload"};
  return {};
}

absl::string_view AV(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

std::string Trimmed(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(AV(s)));
}

std::string Lower(std::string_view s) {
  return absl::AsciiStrToLower(Trimmed(s));
}

// A header value quoted in an error message: bounded, printable.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 100)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 100) out += "...";
  out += '"';
  return out;
}

// Checks Content-Type and Content-Encoding of a write request. Missing
// headers are accepted as remote write 1.0 with snappy, as Prometheus does.
absl::Status CheckWriteHeaders(std::string_view content_type,
                               std::string_view content_encoding) {
  if (!Trimmed(content_type).empty()) {
    std::string_view ct = content_type;
    const size_t semi = ct.find(';');
    const std::string media =
        Lower(semi == std::string_view::npos ? ct : ct.substr(0, semi));
    if (media != "application/x-protobuf") {
      return absl::FailedPreconditionError(
          absl::StrCat("unsupported Content-Type ", Quote(content_type),
                       ": remote write 1.0 uses application/x-protobuf"));
    }
    std::string_view params =
        semi == std::string_view::npos ? "" : ct.substr(semi + 1);
    while (!params.empty()) {
      const size_t next = params.find(';');
      std::string_view param = params.substr(0, next);
      params = next == std::string_view::npos ? "" : params.substr(next + 1);
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      if (Lower(param.substr(0, eq)) != "proto") continue;
      std::string value = Trimmed(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (value == "io.prometheus.write.v2.Request") {
        return absl::FailedPreconditionError(
            "remote write 2.0 (proto=io.prometheus.write.v2.Request) is not "
            "supported yet; send remote write 1.0 (prometheus.WriteRequest)");
      }
      if (value != "prometheus.WriteRequest") {
        return absl::FailedPreconditionError(
            absl::StrCat("unsupported Content-Type proto ", Quote(value),
                         ": want prometheus.WriteRequest"));
      }
    }
  }
  const std::string enc = Lower(content_encoding);
  if (!enc.empty() && enc != "snappy") {
    return absl::FailedPreconditionError(
        absl::StrCat("unsupported Content-Encoding ", Quote(content_encoding),
                     ": remote write bodies are snappy-compressed"));
  }
  return absl::OkStatus();
}

// Compares without an early exit, so the time taken does not reveal how
// much of a secret a guess got right.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

// The client whose credentials `authorization` carries, or an error naming
// what is wrong (never a credential).
absl::StatusOr<const config::ClientAuth*> Authenticate(
    const std::vector<config::ClientAuth>& clients,
    std::string_view authorization) {
  const std::string header = Trimmed(authorization);
  if (header.empty()) {
    return absl::UnauthenticatedError("missing Authorization header");
  }
  const size_t sp = header.find(' ');
  const std::string scheme = Lower(header.substr(0, sp));
  const std::string cred = sp == std::string::npos
                               ? ""
                               : Trimmed(std::string_view(header).substr(sp));
  if (scheme == "bearer") {
    const config::ClientAuth* found = nullptr;
    for (const config::ClientAuth& c : clients) {
      if (!c.bearer_token.empty() && ConstantTimeEquals(c.bearer_token, cred)) {
        found = &c;
      }
    }
    if (found != nullptr) return found;
    return absl::UnauthenticatedError("invalid bearer token");
  }
  if (scheme == "basic") {
    std::string decoded;
    if (!absl::Base64Unescape(cred, &decoded)) {
      return absl::UnauthenticatedError("malformed basic auth credentials");
    }
    const size_t colon = decoded.find(':');
    if (colon == std::string::npos) {
      return absl::UnauthenticatedError("malformed basic auth credentials");
    }
    std::string_view user = std::string_view(decoded).substr(0, colon);
    std::string_view pass = std::string_view(decoded).substr(colon + 1);
    const config::ClientAuth* found = nullptr;
    for (const config::ClientAuth& c : clients) {
      if (c.username.empty()) continue;
      // Both compared every time: no shortcut on a wrong user name.
      const bool u = ConstantTimeEquals(c.username, user);
      const bool p = ConstantTimeEquals(c.password, pass);
      if (u && p) found = &c;
    }
    if (found != nullptr) return found;
    return absl::UnauthenticatedError("invalid username or password");
  }
  return absl::UnauthenticatedError(
      "unsupported Authorization scheme (want Bearer or Basic)");
}

absl::StatusOr<tcp::endpoint> ResolveListen(asio::io_context& ioc,
                                            const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server.listen_address: \"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.listen_address: bad port \"", port_text, "\""));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return tcp::endpoint(tcp::v4(), port);
  beast::error_code ec;
  asio::ip::address ip = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(ip, port);
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, port_text, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.listen_address: cannot resolve \"", host,
                     "\": ", ec.message()));
  }
  return results.begin()->endpoint();
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 204;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kOutOfRange:
      return 413;
    case absl::StatusCode::kFailedPrecondition:
      return 415;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Closes the connection now (posted to the session's strand).
  virtual void ForceClose() = 0;
};

// What every session shares with the server; sessions keep it alive, so it
// outlives them even while the io_context is being torn down.
struct Shared {
  pipeline::Pipeline* pipeline = nullptr;
  ServerOptions options;
  metrics::Registry* registry = nullptr;

  std::atomic<bool> shutting_down{false};
  std::atomic<int> in_flight{0};
  std::mutex mu;
  std::condition_variable cv;  // in_flight or sessions changed
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;

  metrics::Family<metrics::Counter>* requests = nullptr;
  metrics::Family<metrics::Histogram>* duration = nullptr;
  metrics::Gauge* connections = nullptr;
  metrics::Gauge* in_flight_gauge = nullptr;
  metrics::Counter* received_bytes = nullptr;
  logging::RateLimiter reject_log{absl::Seconds(10)};

  void BeginRequest() {
    in_flight.fetch_add(1);
    in_flight_gauge->Add(1);
  }
  void EndRequest() {
    in_flight_gauge->Add(-1);
    if (in_flight.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    }
  }
};

namespace {

template <class Stream>
class Session : public SessionBase,
                public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  // `tls_context` (TLS sessions) is the context the stream was made from:
  // held so a certificate reload cannot free it under the connection.
  Session(std::shared_ptr<Shared> shared, Stream stream, std::string peer,
          std::shared_ptr<asio::ssl::context> tls_context = nullptr)
      : shared_(std::move(shared)),
        tls_context_(std::move(tls_context)),
        stream_(std::move(stream)),
        peer_(std::move(peer)) {
    shared_->connections->Add(1);
  }

  ~Session() override {
    EndRequest();
    shared_->connections->Add(-1);
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->sessions.erase(this);
    shared_->cv.notify_all();
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->sessions.emplace(this, this->weak_from_this());
    }
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(self->IoTimeout());
        self->stream_.async_handshake(
            asio::ssl::stream_base::server, [self](beast::error_code ec) {
              if (ec) {
                logging::Debug("TLS handshake failed",
                               {{"peer", self->peer_}, {"err", ec.message()}});
                return self->Lowest().close();
              }
              self->DoRead();
            });
      } else {
        self->DoRead();
      }
    });
  }

  void ForceClose() override {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this()] { self->CloseNow(); });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  std::chrono::milliseconds IoTimeout() const {
    return absl::ToChronoMilliseconds(shared_->options.io_timeout);
  }

  void CloseNow() {
    closed_ = true;
    beast::error_code ec;
    Lowest().socket().close(ec);
  }

  void BeginRequest() {
    if (in_request_) return;
    in_request_ = true;
    shared_->BeginRequest();
  }
  void EndRequest() {
    if (!in_request_) return;
    in_request_ = false;
    shared_->EndRequest();
  }

  void DoRead() {
    if (closed_) return;
    header_parser_.emplace();
    header_parser_->header_limit(kMaxHeaderBytes);
    // The body limit is checked against Content-Length by OnHeader (and by
    // the body parser): the header parser must not fail on it first.
    header_parser_->body_limit(boost::none);
    body_parser_.reset();
    Lowest().expires_after(
        absl::ToChronoMilliseconds(shared_->options.idle_timeout));
    http::async_read_header(
        stream_, buffer_, *header_parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) {
          self->OnHeader(ec);
        });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      // A request that never started (idle close, timeout, EOF) is no
      // request; a garbled one gets a 400.
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == beast::error::timeout || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset || closed_) {
        return CloseNow();
      }
      BeginRequest();
      start_ = std::chrono::steady_clock::now();
      route_ = Route{};
      if (ec == http::error::header_limit) {
        return Reply(431, "request header larger than 64 KiB", true);
      }
      return Reply(400, absl::StrCat("malformed HTTP request: ", ec.message()),
                   true);
    }
    BeginRequest();
    start_ = std::chrono::steady_clock::now();
    const auto& req = header_parser_->get();
    route_ = Match(req.target());
    std::shared_ptr<const config::Config> cfg = shared_->pipeline->config();
    uint64_t limit = kMaxOtherBodyBytes;
    if (route_.endpoint == Endpoint::kWrite) {
      if (shared_->shutting_down.load()) {
        return Reply(503, "shutting down", true);
      }
      limit = cfg ? cfg->server.max_request_bytes : kMaxOtherBodyBytes;
    }
    const auto length = header_parser_->content_length();
    if (length && *length > limit) {
      // Answer without reading the body; the connection cannot be reused.
      return Reply(
          413,
          absl::StrCat("request body of ", *length, " bytes is larger than ",
                       route_.endpoint == Endpoint::kWrite
                           ? "server.max_request_bytes"
                           : "the limit",
                       " (", limit, ")"),
          true);
    }
    body_parser_.emplace(std::move(*header_parser_));
    header_parser_.reset();
    body_parser_->body_limit(limit);
    limit_ = limit;
    Lowest().expires_after(IoTimeout());
    if (beast::iequals(body_parser_->get()[http::field::expect],
                       "100-continue")) {
      continue_.emplace(http::status::continue_, 11);
      http::async_write(
          stream_, *continue_,
          [self = this->shared_from_this()](beast::error_code ec, size_t) {
            if (ec) return self->CloseNow();
            self->ReadBody();
          });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // Beast reads at most the buffer's free room per call (512 bytes when
    // it has none): without room an 80 KiB body takes ~100 reads, each a
    // syscall, a timer update and a handler. 64 KiB is its largest read.
    buffer_.reserve(kBodyReadBytes);
    http::async_read(stream_, buffer_, *body_parser_,
                     [self = this->shared_from_this()](
                         beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return Reply(413,
                   absl::StrCat("request body is larger than ",
                                route_.endpoint == Endpoint::kWrite
                                    ? "server.max_request_bytes"
                                    : "the limit",
                                " (", limit_, ")"),
                   true);
    }
    if (ec) {
      if (ec == beast::error::timeout || ec == http::error::partial_message ||
          ec == asio::error::eof || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset || closed_) {
        return CloseNow();
      }
      return Reply(400, absl::StrCat("malformed HTTP request: ", ec.message()),
                   true);
    }
    Handle();
  }

  void Handle() {
    auto& req = body_parser_->get();
    const http::verb method = req.method();
    const bool shutting_down = shared_->shutting_down.load();
    switch (route_.endpoint) {
      case Endpoint::kUnknown:
        return Reply(404, "not found");
      case Endpoint::kHealthy:
        if (method != http::verb::get) return MethodNotAllowed("GET");
        return Reply(200, "OK");
      case Endpoint::kReady:
        if (method != http::verb::get) return MethodNotAllowed("GET");
        if (shutting_down) return Reply(503, "shutting down");
        if (shared_->pipeline->config() == nullptr) {
          return Reply(503, "no configuration loaded");
        }
        return Reply(200, "OK");
      case Endpoint::kMetrics: {
        if (method != http::verb::get) return MethodNotAllowed("GET");
        // Count this request before exposing, so /metrics shows itself.
        return Reply(200, "", false, /*metrics_body=*/true);
      }
      case Endpoint::kReload: {
        if (method != http::verb::post && method != http::verb::put) {
          return MethodNotAllowed("POST, PUT");
        }
        if (!shared_->options.reload) {
          return Reply(500, "reloading is not available");
        }
        absl::Status st = shared_->options.reload();
        if (!st.ok()) {
          return Reply(500, absl::StrCat("reload failed: ", st.message()));
        }
        return Reply(200, "OK");
      }
      case Endpoint::kWrite:
        break;
    }
    if (method != http::verb::post) return MethodNotAllowed("POST");
    if (shutting_down) return Reply(503, "shutting down", true);
    std::shared_ptr<const config::Config> cfg = shared_->pipeline->config();
    if (cfg == nullptr) return Reply(503, "no configuration loaded");

    std::vector<std::pair<std::string, std::string>> inject;
    if (!cfg->server.clients.empty()) {
      auto client =
          Authenticate(cfg->server.clients, req[http::field::authorization]);
      if (!client.ok()) {
        return Reply(
            401, std::string(client.status().message()), false, false,
            {{http::field::www_authenticate, "Basic realm=\"promrelay\""}});
      }
      for (const auto& [k, v] : (*client)->inject_labels) {
        inject.emplace_back(k, v);
      }
    }
    absl::Status st = CheckWriteHeaders(req[http::field::content_type],
                                        req[http::field::content_encoding]);
    if (!st.ok()) return Reply(415, std::string(st.message()));

    const std::string& body = req.body();
    shared_->received_bytes->Inc(static_cast<double>(body.size()));
    pipeline::IngestOptions options;
    options.inject_labels = inject;
    st = shared_->pipeline->Ingest(body, options);
    const int code = HttpStatusFor(st);
    if (st.ok()) return Reply(204, "");
    if (code == 429) {
      return Reply(code, std::string(st.message()), false, false,
                   {{http::field::retry_after,
                     std::to_string(shared_->options.retry_after_seconds)}});
    }
    return Reply(code, std::string(st.message()));
  }

  void MethodNotAllowed(std::string_view allow) {
    Reply(405, "method not allowed", false, false,
          {{http::field::allow, std::string(allow)}});
  }

  void Reply(int code, std::string message, bool close = false,
             bool metrics_body = false,
             std::vector<std::pair<http::field, std::string>> headers = {}) {
    const bool keep_alive =
        !close && !shared_->shutting_down.load() &&
        (body_parser_ ? body_parser_->get().keep_alive()
                      : header_parser_ && header_parser_->get().keep_alive());
    const std::string code_text = std::to_string(code);
    shared_->requests->With({code_text, route_.label}).Inc();
    // Observed before the response is written, so a client that reads the
    // response and then asks /metrics always finds its request counted.
    shared_->duration->With({route_.label})
        .Observe(std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - start_)
                     .count());
    if (code >= 400 && code != 404 && code != 405) {
      uint64_t suppressed = 0;
      if (shared_->reject_log.Allow(&suppressed)) {
        logging::Warn("request rejected", {{"code", code},
                                           {"path", route_.label},
                                           {"peer", peer_},
                                           {"err", message},
                                           {"suppressed", suppressed}});
      }
    }
    res_.emplace(static_cast<http::status>(code), 11);
    res_->keep_alive(keep_alive);
    for (auto& [field, value] : headers) res_->set(field, value);
    if (metrics_body) {
      res_->set(http::field::content_type,
                "text/plain; version=0.0.4; charset=utf-8");
      res_->body() = shared_->registry->Expose();
    } else if (code != 204) {
      res_->set(http::field::content_type, "text/plain; charset=utf-8");
      res_->body() = std::move(message);
      res_->body() += '\n';
    }
    res_->prepare_payload();
    Lowest().expires_after(IoTimeout());
    http::async_write(
        stream_, *res_,
        [self = this->shared_from_this(), keep_alive](
            beast::error_code ec, size_t) { self->OnWrite(ec, keep_alive); });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    res_.reset();
    body_parser_.reset();
    // Decided before the request stops counting as in flight: whoever sees
    // in_flight() drop to 0 and then begins a shutdown knows this connection
    // already went back to waiting for a request (and will get a 503).
    const bool close = ec || !keep_alive || shared_->shutting_down.load();
    EndRequest();
    if (ec) return CloseNow();
    if (close) return GracefulClose();
    DoRead();
  }

  // Half-closes, then reads (and discards) what the client still sends
  // until it closes too or kLingerTime passes: closing with unread data
  // would make the kernel send a reset that can destroy our response.
  void GracefulClose() {
    if (closed_) return;
    if constexpr (kTls) {
      Lowest().expires_after(kLingerTime);
      stream_.async_shutdown([self = this->shared_from_this()](
                                 beast::error_code) { self->CloseNow(); });
    } else {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return CloseNow();
      Lowest().expires_after(kLingerTime);
      Drain();
    }
  }

  void Drain() {
    Lowest().async_read_some(
        asio::buffer(drain_buf_),
        [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (ec || self->closed_) return self->CloseNow();
          self->Drain();
        });
  }

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<asio::ssl::context> tls_context_;  // outlives stream_
  Stream stream_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> body_parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> res_;
  Route route_;
  uint64_t limit_ = 0;
  std::chrono::steady_clock::time_point start_;
  bool in_request_ = false;
  bool closed_ = false;
  char drain_buf_[8192];
};

}  // namespace

// A server TLS context with the certificate chain and key from these files.
absl::StatusOr<std::shared_ptr<asio::ssl::context>> LoadServerTls(
    const config::ServerTls& files) {
  auto ctx =
      std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  beast::error_code ec;
  ctx->set_options(
      asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
          asio::ssl::context::no_tlsv1_1,
      ec);
  ctx->use_certificate_chain_file(files.cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.tls.cert_file: cannot load \"", files.cert_file,
                     "\": ", ec.message()));
  }
  // OpenSSL also refuses a key that does not belong to the certificate
  // ("key values mismatch"), which would fail every handshake.
  ctx->use_private_key_file(files.key_file, asio::ssl::context::pem, ec);
  if (ec) {
    // The key's contents never appear in the message.
    return absl::InvalidArgumentError(
        absl::StrCat("server.tls.key_file: cannot load \"", files.key_file,
                     "\": ", ec.message()));
  }
  return ctx;
}

struct Server::Impl {
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  // The TLS context new connections use, and one loaded by StageTls()
  // that CommitStagedTls() puts in its place.
  mutable std::mutex tls_mu;
  std::shared_ptr<asio::ssl::context> tls;
  std::shared_ptr<asio::ssl::context> staged_tls;
  std::shared_ptr<asio::ssl::context> Tls() const {
    std::lock_guard<std::mutex> lock(tls_mu);
    return tls;
  }
  // Declared after what the handlers use, so it is destroyed first.
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> retry_timer;
  std::vector<std::thread> threads;
  int port = 0;
  std::atomic<bool> stopped{false};
  std::once_flag shutdown_once;

  void DoAccept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec,
                                                          tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) {
          return;
        }
        // Out of file descriptors and the like: pause instead of spinning.
        static logging::RateLimiter limiter(absl::Seconds(10));
        if (limiter.Allow(nullptr)) {
          logging::Error("accept failed", {{"err", ec.message()}});
        }
        retry_timer->expires_after(std::chrono::milliseconds(100));
        retry_timer->async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor->is_open()) DoAccept();
        });
        return;
      }
      beast::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);
      std::string peer;
      auto remote = socket.remote_endpoint(opt_ec);
      if (!opt_ec) {
        peer = absl::StrCat(remote.address().to_string(), ":", remote.port());
      }
      if (std::shared_ptr<asio::ssl::context> tls_context = Tls()) {
        auto s =
            std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
                shared,
                beast::ssl_stream<beast::tcp_stream>(std::move(socket),
                                                     *tls_context),
                std::move(peer), tls_context);
        s->Start();
      } else {
        auto s = std::make_shared<Session<beast::tcp_stream>>(
            shared, beast::tcp_stream(std::move(socket)), std::move(peer));
        s->Start();
      }
      DoAccept();
    });
  }
};

Server::Server(pipeline::Pipeline* pipeline, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  Shared& s = *impl_->shared;
  s.pipeline = pipeline;
  s.options = std::move(options);
  s.registry =
      s.options.registry != nullptr ? s.options.registry : &metrics::Default();
  metrics::Registry& r = *s.registry;
  s.requests = &r.AddCounter(
      "promrelay_requests_total",
      "HTTP requests answered, by status code and path (unknown paths: "
      "\"other\").",
      {"code", "path"});
  s.duration = &r.AddHistogram(
      "promrelay_request_duration_seconds",
      "Time from a request's header to its response being ready, by path.",
      {"path"});
  s.connections =
      &r.AddGauge("promrelay_http_connections", "Open HTTP connections.")
           .With({});
  s.in_flight_gauge =
      &r.AddGauge("promrelay_http_in_flight_requests",
                  "HTTP requests being read, handled or answered.")
           .With({});
  s.received_bytes =
      &r.AddCounter("promrelay_received_bytes_total",
                    "Compressed remote_write body bytes received.")
           .With({});
}

Server::~Server() { Stop(absl::Now()); }

absl::Status Server::StageTls(const config::ServerConfig& config) {
  Impl& impl = *impl_;
  if (impl.Tls() == nullptr || !config.tls) {
    // Turning TLS on or off needs a new listener.
    return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> tls =
      LoadServerTls(*config.tls);
  if (!tls.ok()) return tls.status();
  std::lock_guard<std::mutex> lock(impl.tls_mu);
  impl.staged_tls = *std::move(tls);
  return absl::OkStatus();
}

void Server::CommitStagedTls() {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.tls_mu);
  if (impl.staged_tls == nullptr) return;
  impl.tls = std::move(impl.staged_tls);
  impl.staged_tls = nullptr;
  logging::Info("server TLS certificate in use for new connections");
}

absl::Status Server::Start(const config::ServerConfig& config) {
  Impl& impl = *impl_;
  if (config.tls) {
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> tls =
        LoadServerTls(*config.tls);
    if (!tls.ok()) return tls.status();
    impl.tls = *std::move(tls);
  }
  absl::StatusOr<tcp::endpoint> ep =
      ResolveListen(impl.ioc, config.listen_address);
  if (!ep.ok()) return ep.status();
  impl.acceptor.emplace(asio::make_strand(impl.ioc));
  impl.retry_timer.emplace(impl.acceptor->get_executor());
  beast::error_code ec;
  impl.acceptor->open(ep->protocol(), ec);
  if (!ec)
    impl.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor->bind(*ep, ec);
  if (!ec) impl.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("server.listen_address: cannot listen on ",
                     config.listen_address, ": ", ec.message()));
  }
  impl.port = impl.acceptor->local_endpoint(ec).port();
  impl.DoAccept();
  const int threads = IoThreadCount(config);
  for (int i = 0; i < threads; ++i) {
    impl.threads.emplace_back([this] { impl_->ioc.run(); });
  }
  logging::Info("listening", {{"address", config.listen_address},
                              {"port", impl.port},
                              {"tls", config.tls.has_value()},
                              {"io_threads", threads}});
  return absl::OkStatus();
}

int Server::port() const { return impl_->port; }

bool Server::shutting_down() const {
  return impl_->shared->shutting_down.load();
}

int Server::in_flight() const { return impl_->shared->in_flight.load(); }

void Server::BeginShutdown() {
  Impl& impl = *impl_;
  impl.shared->shutting_down.store(true);
  std::call_once(impl.shutdown_once, [&impl] {
    if (!impl.acceptor) return;
    std::promise<void> done;
    auto closed = done.get_future();
    asio::post(impl.acceptor->get_executor(), [&impl, &done] {
      beast::error_code ec;
      impl.acceptor->close(ec);
      impl.retry_timer->cancel();
      done.set_value();
    });
    // Without running threads the post never runs: close directly.
    if (impl.threads.empty()) {
      beast::error_code ec;
      impl.acceptor->close(ec);
      return;
    }
    closed.wait_for(std::chrono::seconds(5));
  });
}

void Server::DrainRequests(absl::Time deadline) {
  BeginShutdown();
  Shared& s = *impl_->shared;
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait_until(lock, absl::ToChronoTime(deadline),
                  [&s] { return s.in_flight.load() == 0; });
}

asio::io_context& Server::io_context() { return impl_->ioc; }

int IoThreadCount(const config::ServerConfig& config) {
  int threads = config.io_threads;
  if (threads <= 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
  }
  return std::max(threads, 1);
}

void Server::Stop(absl::Time deadline) {
  Impl& impl = *impl_;
  if (impl.stopped.exchange(true)) return;
  DrainRequests(deadline);
  Shared& s = *impl.shared;
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto& [ptr, weak] : s.sessions) {
      if (auto p = weak.lock()) live.push_back(std::move(p));
    }
  }
  for (auto& p : live) p->ForceClose();
  live.clear();
  {
    // Give the closes a moment to run, so sessions end cleanly.
    std::unique_lock<std::mutex> lock(s.mu);
    s.cv.wait_for(lock, std::chrono::seconds(1),
                  [&s] { return s.sessions.empty(); });
  }
  impl.ioc.stop();
  for (std::thread& t : impl.threads) t.join();
  impl.threads.clear();
}

}  // namespace promrelay::server
