#include "proxy/forward/http_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/error.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/span_body.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"

namespace promrelay::forward {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kBodyPrefixBytes = 256;
// Remote-write responses are tiny; anything larger is read no further and
// the connection is dropped.
constexpr uint64_t kMaxResponseBody = 1 << 20;

std::atomic<uint64_t> next_endpoint_id{1};

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  if (d > absl::Hours(24 * 365)) d = absl::Hours(24 * 365);
  return absl::ToChronoNanoseconds(d);
}

// Errors that mean "the server closed the idle keep-alive connection".
bool IsStaleConnectionError(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

// TLS-layer failures after the handshake (a TLS 1.3 server checks the
// client certificate only then) count as TLS errors, not network ones.
HttpResponse::Error KindOf(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == ssl::error::get_stream_category()) {
    return ec == ssl::error::stream_truncated ? HttpResponse::Error::kNetwork
                                              : HttpResponse::Error::kTls;
  }
  return HttpResponse::Error::kNetwork;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Endpoint>> MakeEndpoint(
    const std::string& url_text, const config::ClientTls& tls_config) {
  absl::StatusOr<Url> url = ParseUrl(url_text);
  if (!url.ok()) return url.status();
  auto ep = std::make_shared<Endpoint>();
  ep->url = *std::move(url);
  ep->id = next_endpoint_id.fetch_add(1);
  if (!ep->url.https) return ep;

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  error_code ec;
  ERR_clear_error();
  if (!tls_config.ca_file.empty()) {
    ctx->load_verify_file(tls_config.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_config.ca_file: cannot load \"", tls_config.ca_file,
                       "\": ", ec.message(), " ", OpenSslErrors()));
    }
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load the system CA certificates: ", ec.message()));
    }
  }
  if (tls_config.cert_file.empty() != tls_config.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_config: cert_file and key_file must be given together");
  }
  if (!tls_config.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls_config.cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_config.cert_file: cannot load \"",
                       tls_config.cert_file, "\": ", ec.message()));
    }
    ctx->use_private_key_file(tls_config.key_file, ssl::context::pem, ec);
    if (ec) {
      // Only the path: OpenSSL's text about a key file never includes the
      // key, but keep the message to what the user can act on.
      return absl::InvalidArgumentError(
          absl::StrCat("tls_config.key_file: cannot load \"",
                       tls_config.key_file, "\": ", ec.message()));
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          "tls_config: key_file does not match cert_file");
    }
  }
  ERR_clear_error();
  ep->tls = std::move(ctx);
  ep->insecure_skip_verify = tls_config.insecure_skip_verify;
  ep->verify_name =
      tls_config.server_name.empty() ? ep->url.host : tls_config.server_name;
  error_code addr_ec;
  asio::ip::make_address(ep->verify_name, addr_ec);
  ep->verify_name_is_ip = !addr_ec;
  if (!ep->verify_name_is_ip) ep->sni = ep->verify_name;
  return ep;
}

struct HttpClient::Impl {
  // The body is sent straight from the caller's buffer.
  using Request = http::request<http::span_body<const char>>;

  // Declared first so it outlives the I/O objects below.
  asio::io_context ioc{1};
  tcp::resolver resolver{ioc};
  asio::steady_timer deadline_timer{ioc};
  asio::steady_timer sleep_timer{ioc};
  std::optional<tcp::socket> plain;
  std::unique_ptr<ssl::stream<tcp::socket>> tls;
  boost::beast::flat_buffer buffer;
  bool open = false;
  uint64_t endpoint_id = 0;
  uint64_t connections_opened = 0;
  std::atomic<bool> aborted{false};
  bool timed_out = false;
  uint64_t request_gen = 0;

  // Runs the I/O loop until `done`: the one thread that calls Post/Sleep
  // is the only one running handlers, so handlers need no locking.
  void RunUntil(const bool& done) {
    while (!done) {
      if (ioc.stopped()) ioc.restart();
      ioc.run_one();
    }
  }

  // Called from handlers: makes pending operations on the connection fail.
  void Shut() {
    error_code ignored;
    if (tls) tls->next_layer().close(ignored);
    if (plain) plain->close(ignored);
    resolver.cancel();
  }

  void Reset() {
    Shut();
    tls.reset();
    plain.reset();
    buffer.clear();
    open = false;
  }

  HttpResponse Failure(HttpResponse::Error kind, std::string message) {
    if (aborted.load()) {
      kind = HttpResponse::Error::kAborted;
      message = "aborted";
    } else if (timed_out) {
      kind = HttpResponse::Error::kTimeout;
      message = absl::StrCat("timeout (", message, ")");
    }
    Reset();
    HttpResponse r;
    r.error = kind;
    r.message = std::move(message);
    return r;
  }

  template <typename Stream>
  error_code Write(Stream& s, Request& req) {
    bool done = false;
    error_code out;
    http::async_write(s, req, [&](error_code ec, size_t) {
      out = ec;
      done = true;
    });
    RunUntil(done);
    return out;
  }

  template <typename Stream>
  error_code Read(Stream& s, http::response_parser<http::string_body>& p) {
    bool done = false;
    error_code out;
    http::async_read(s, buffer, p, [&](error_code ec, size_t) {
      out = ec;
      done = true;
    });
    RunUntil(done);
    return out;
  }

  std::optional<HttpResponse> Connect(const Endpoint& ep);
  HttpResponse Attempt(const Endpoint& ep, Request& req, bool* stale);
};

std::optional<HttpResponse> HttpClient::Impl::Connect(const Endpoint& ep) {
  const Url& url = ep.url;
  std::string where = absl::StrCat(url.host_header);
  tcp::resolver::results_type results;
  {
    bool done = false;
    error_code out;
    resolver.async_resolve(url.host, url.port,
                           [&](error_code ec, tcp::resolver::results_type r) {
                             out = ec;
                             results = std::move(r);
                             done = true;
                           });
    RunUntil(done);
    if (out || aborted.load() || timed_out) {
      return Failure(HttpResponse::Error::kNetwork,
                     absl::StrCat("resolve ", url.host, ": ", out.message()));
    }
  }
  tcp::socket* sock;
  if (ep.tls) {
    tls = std::make_unique<ssl::stream<tcp::socket>>(ioc, *ep.tls);
    sock = &tls->next_layer();
  } else {
    plain.emplace(ioc);
    sock = &*plain;
  }
  {
    bool done = false;
    error_code out;
    asio::async_connect(*sock, results,
                        [&](error_code ec, const tcp::endpoint&) {
                          out = ec;
                          done = true;
                        });
    RunUntil(done);
    if (out || aborted.load() || timed_out) {
      return Failure(HttpResponse::Error::kNetwork,
                     absl::StrCat("connect ", where, ": ", out.message()));
    }
  }
  error_code ignored;
  sock->set_option(tcp::no_delay(true), ignored);
  if (tls) {
    SSL* ssl_handle = tls->native_handle();
    if (!ep.sni.empty()) SSL_set_tlsext_host_name(ssl_handle, ep.sni.c_str());
    if (ep.insecure_skip_verify) {
      tls->set_verify_mode(ssl::verify_none);
    } else {
      tls->set_verify_mode(ssl::verify_peer);
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      X509_VERIFY_PARAM_set_hostflags(param,
                                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (ep.verify_name_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, ep.verify_name.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, ep.verify_name.c_str(), 0);
      }
    }
    bool done = false;
    error_code out;
    tls->async_handshake(ssl::stream_base::client, [&](error_code ec) {
      out = ec;
      done = true;
    });
    RunUntil(done);
    if (out || aborted.load() || timed_out) {
      std::string why = out.message();
      long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        why = absl::StrCat("certificate verification failed: ",
                           X509_verify_cert_error_string(verify));
      }
      ERR_clear_error();
      return Failure(HttpResponse::Error::kTls,
                     absl::StrCat("TLS handshake with ", where, ": ", why));
    }
  }
  open = true;
  endpoint_id = ep.id;
  ++connections_opened;
  return std::nullopt;
}

HttpResponse HttpClient::Impl::Attempt(const Endpoint& ep, Request& req,
                                       bool* stale) {
  *stale = false;
  bool reused = open;
  if (!open) {
    if (auto failed = Connect(ep)) return *std::move(failed);
  }
  error_code ec = tls ? Write(*tls, req) : Write(*plain, req);
  if (ec || aborted.load() || timed_out) {
    *stale = reused && IsStaleConnectionError(ec);
    return Failure(KindOf(ec), absl::StrCat("send to ", ep.url.host_header,
                                            ": ", ec.message()));
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  ec = tls ? Read(*tls, parser) : Read(*plain, parser);
  bool header_ok = parser.is_header_done();
  if ((ec && !(ec == http::error::body_limit && header_ok)) || aborted.load() ||
      timed_out) {
    *stale = reused && !parser.got_some() && IsStaleConnectionError(ec);
    return Failure(KindOf(ec),
                   absl::StrCat("read response from ", ep.url.host_header, ": ",
                                ec.message()));
  }
  HttpResponse r;
  const auto& res = parser.get();
  r.status = res.result_int();
  r.body_prefix = res.body().substr(0, kBodyPrefixBytes);
  auto it = res.find(http::field::retry_after);
  if (it != res.end()) r.retry_after = std::string(it->value());
  if (ec || !res.keep_alive()) Reset();
  return r;
}

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::Post(
    const Endpoint& ep,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::string_view body, absl::Duration timeout) {
  Impl& im = *impl_;
  if (im.aborted.load()) return im.Failure(HttpResponse::Error::kAborted, "");
  if (im.open && im.endpoint_id != ep.id) im.Reset();

  Impl::Request req{http::verb::post, ep.url.target, 11};
  req.set(http::field::host, ep.url.host_header);
  for (const auto& [name, value] : headers) req.set(name, value);
  req.keep_alive(true);
  req.body() = boost::beast::span<const char>(body.data(), body.size());
  req.prepare_payload();

  im.timed_out = false;
  uint64_t gen = ++im.request_gen;
  im.deadline_timer.expires_after(ToChrono(timeout));
  im.deadline_timer.async_wait([&im, gen](error_code ec) {
    if (ec || gen != im.request_gen) return;
    im.timed_out = true;
    im.Shut();
  });

  bool stale = false;
  HttpResponse r = im.Attempt(ep, req, &stale);
  if (stale) r = im.Attempt(ep, req, &stale);

  // Let the cancelled deadline handler run now rather than during a later
  // request (where `gen` already makes it harmless).
  im.deadline_timer.cancel();
  im.ioc.restart();
  im.ioc.poll();
  return r;
}

bool HttpClient::Sleep(absl::Duration d) {
  Impl& im = *impl_;
  if (im.aborted.load()) return false;
  bool done = false;
  im.sleep_timer.expires_after(ToChrono(d));
  im.sleep_timer.async_wait([&](error_code) { done = true; });
  im.RunUntil(done);
  return !im.aborted.load();
}

void HttpClient::Abort() {
  Impl* im = impl_.get();
  im->aborted.store(true);
  asio::post(im->ioc, [im] {
    im->Shut();
    im->sleep_timer.cancel();
  });
}

bool HttpClient::connected() const { return impl_->open; }

void HttpClient::Close() { impl_->Reset(); }

uint64_t HttpClient::connections_opened() const {
  return impl_->connections_opened;
}

}  // namespace promrelay::forward
