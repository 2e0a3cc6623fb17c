#include "proxy/forward/http_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/defer.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/error.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
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

class HostLookup {
 public:
  using Done =
      std::function<void(error_code, std::vector<tcp::endpoint> endpoints)>;

  HostLookup() : thread_([this] { Run(); }) {}

  ~HostLookup() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  // `done` runs on the lookup thread, unless this is destroyed first.
  void Lookup(std::string host, std::string port, Done done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back({std::move(host), std::move(port), std::move(done)});
    }
    cv_.notify_one();
  }

 private:
  struct Request {
    std::string host, port;
    Done done;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      Request r = std::move(pending_.front());
      pending_.pop_front();
      lock.unlock();
      error_code ec;
      std::vector<tcp::endpoint> endpoints;
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_ADDRCONFIG;
      addrinfo* found = nullptr;
      const int rc =
          ::getaddrinfo(r.host.c_str(), r.port.c_str(), &hints, &found);
      if (rc != 0) {
        ec = rc == EAI_NONAME  ? asio::error::host_not_found
             : rc == EAI_AGAIN ? asio::error::host_not_found_try_again
                               : asio::error::no_recovery;
      } else {
        for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
          if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
          tcp::endpoint e;
          std::memcpy(e.data(), a->ai_addr,
                      std::min<size_t>(a->ai_addrlen, e.capacity()));
          e.resize(a->ai_addrlen);
          endpoints.push_back(e);
        }
        ::freeaddrinfo(found);
        if (endpoints.empty()) ec = asio::error::host_not_found;
      }
      lock.lock();
      if (stopping_) return;
      // Under the lock, so the destructor cannot finish meanwhile.
      r.done(ec, std::move(endpoints));
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

std::shared_ptr<HostLookup> NewHostLookup() {
  return std::make_shared<HostLookup>();
}

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  // The body is sent straight from the caller's buffer.
  using Request = http::request<http::span_body<const char>>;
  using Strand = asio::strand<asio::io_context::executor_type>;

  Impl(asio::io_context& ioc, std::weak_ptr<HostLookup> host_lookup)
      : lookup(std::move(host_lookup)),
        use_lookup(!lookup.expired()),
        strand(asio::make_strand(ioc)),
        resolver(strand),
        deadline_timer(strand),
        wait_timer(strand) {}

  const std::weak_ptr<HostLookup> lookup;
  const bool use_lookup;
  uint64_t lookup_gen = 0;  // tells a late lookup result from the current
  bool lookup_pending = false;
  Strand strand;
  tcp::resolver resolver;  // when there is no HostLookup
  asio::steady_timer deadline_timer;
  asio::steady_timer wait_timer;
  std::optional<tcp::socket> plain;
  std::unique_ptr<ssl::stream<tcp::socket>> tls;
  boost::beast::flat_buffer buffer;
  bool open = false;
  uint64_t endpoint_id = 0;
  std::atomic<bool> aborted{false};

  // The request in progress (one at a time).
  std::shared_ptr<const Endpoint> ep;
  std::optional<Request> request;
  std::optional<http::response_parser<http::string_body>> parser;
  std::function<void(HttpResponse)> done;
  bool timed_out = false;
  bool reused = false;         // this attempt started on an open connection
  bool retried_stale = false;  // the one retry on a fresh connection is used
  uint64_t request_gen = 0;    // tells a stale deadline from the current one

  // Makes pending operations on the connection fail.
  void Shut() {
    error_code ignored;
    if (tls) tls->next_layer().close(ignored);
    if (plain) plain->close(ignored);
    resolver.cancel();
    if (lookup_pending) {
      // getaddrinfo cannot be interrupted: its result, when it comes, is
      // ignored, and the request fails now.
      lookup_pending = false;
      ++lookup_gen;
      asio::post(strand, [self = shared_from_this()] {
        self->OnResolved(asio::error::operation_aborted, {});
      });
    }
  }

  void Reset() {
    Shut();
    tls.reset();
    plain.reset();
    buffer.clear();
    open = false;
  }

  // Calls `fn` with the connection's stream, plain or TLS.
  template <typename Fn>
  void WithStream(Fn&& fn) {
    if (tls) {
      fn(*tls);
    } else {
      fn(*plain);
    }
  }

  void Finish(HttpResponse r) {
    ++request_gen;  // the deadline, if it fires later, is stale
    deadline_timer.cancel();
    request.reset();
    parser.reset();
    ep.reset();
    auto cb = std::move(done);
    done = nullptr;
    cb(std::move(r));
  }

  void Fail(HttpResponse::Error kind, std::string message) {
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
    Finish(std::move(r));
  }

  // True when the operation should stop here (aborted, timed out, or
  // failed); `ec` then is what failed.
  bool Interrupted(const error_code& ec) const {
    return ec || aborted.load() || timed_out;
  }

  void Start() {
    reused = open;
    if (open) {
      Write();
    } else {
      Resolve();
    }
  }

  // A reused connection the server had closed while idle: one more try on
  // a fresh connection, else the failure.
  void RetryStaleOr(HttpResponse::Error kind, std::string message, bool stale) {
    if (stale && !retried_stale && !aborted.load() && !timed_out) {
      retried_stale = true;
      Reset();
      Start();
      return;
    }
    Fail(kind, std::move(message));
  }

  // The connection is up (TCP, and TLS if any): send.
  void Connected() {
    open = true;
    endpoint_id = ep->id;
    Write();
  }

  void Resolve();
  void OnResolved(const error_code& ec, std::vector<tcp::endpoint> endpoints);
  void Connect(const std::vector<tcp::endpoint>& endpoints);
  void Handshake();
  void Write();
  void Read();
  void Complete(const error_code& ec);
};

void HttpClient::Impl::Resolve() {
  const Url& url = ep->url;
  if (!use_lookup) {
    resolver.async_resolve(
        url.host, url.port,
        [self = shared_from_this()](error_code ec,
                                    tcp::resolver::results_type results) {
          self->OnResolved(ec, {results.begin(), results.end()});
        });
    return;
  }
  std::shared_ptr<HostLookup> l = lookup.lock();
  if (!l) {
    OnResolved(asio::error::operation_aborted, {});
    return;
  }
  lookup_pending = true;
  l->Lookup(url.host, url.port,
            [self = shared_from_this(), gen = lookup_gen](
                error_code ec, std::vector<tcp::endpoint> endpoints) {
              asio::post(self->strand,
                         [self, gen, ec, endpoints = std::move(endpoints)] {
                           if (gen != self->lookup_gen)
                             return;  // Shut() answered
                           self->lookup_pending = false;
                           self->OnResolved(ec, endpoints);
                         });
            });
}

void HttpClient::Impl::OnResolved(const error_code& ec,
                                  std::vector<tcp::endpoint> endpoints) {
  if (Interrupted(ec)) {
    Fail(HttpResponse::Error::kNetwork,
         absl::StrCat("resolve ", ep->url.host, ": ", ec.message()));
    return;
  }
  Connect(endpoints);
}

void HttpClient::Impl::Connect(const std::vector<tcp::endpoint>& endpoints) {
  tcp::socket* sock;
  if (ep->tls) {
    tls = std::make_unique<ssl::stream<tcp::socket>>(strand, *ep->tls);
    sock = &tls->next_layer();
  } else {
    plain.emplace(strand);
    sock = &*plain;
  }
  asio::async_connect(
      *sock, endpoints,
      [self = shared_from_this(), sock](error_code ec, const tcp::endpoint&) {
        if (self->Interrupted(ec)) {
          self->Fail(HttpResponse::Error::kNetwork,
                     absl::StrCat("connect ", self->ep->url.host_header, ": ",
                                  ec.message()));
          return;
        }
        error_code ignored;
        sock->set_option(tcp::no_delay(true), ignored);
        if (self->tls) {
          self->Handshake();
          return;
        }
        self->Connected();
      });
}

void HttpClient::Impl::Handshake() {
  SSL* ssl_handle = tls->native_handle();
  if (!ep->sni.empty()) SSL_set_tlsext_host_name(ssl_handle, ep->sni.c_str());
  if (ep->insecure_skip_verify) {
    tls->set_verify_mode(ssl::verify_none);
  } else {
    tls->set_verify_mode(ssl::verify_peer);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ep->verify_name_is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, ep->verify_name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, ep->verify_name.c_str(), 0);
    }
  }
  tls->async_handshake(
      ssl::stream_base::client, [self = shared_from_this()](error_code ec) {
        if (self->Interrupted(ec)) {
          std::string why = ec.message();
          if (self->tls) {
            long verify = SSL_get_verify_result(self->tls->native_handle());
            if (verify != X509_V_OK) {
              why = absl::StrCat("certificate verification failed: ",
                                 X509_verify_cert_error_string(verify));
            }
          }
          ERR_clear_error();
          self->Fail(HttpResponse::Error::kTls,
                     absl::StrCat("TLS handshake with ",
                                  self->ep->url.host_header, ": ", why));
          return;
        }
        self->Connected();
      });
}

void HttpClient::Impl::Write() {
  WithStream([this](auto& stream) {
    http::async_write(
        stream, *request, [self = shared_from_this()](error_code ec, size_t) {
          if (self->Interrupted(ec)) {
            self->RetryStaleOr(
                KindOf(ec),
                absl::StrCat("send to ", self->ep->url.host_header, ": ",
                             ec.message()),
                self->reused && IsStaleConnectionError(ec));
            return;
          }
          self->Read();
        });
  });
}

void HttpClient::Impl::Read() {
  parser.emplace();
  parser->body_limit(kMaxResponseBody);
  WithStream([this](auto& stream) {
    http::async_read(stream, buffer, *parser,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->Complete(ec);
                     });
  });
}

void HttpClient::Impl::Complete(const error_code& ec) {
  const bool header_ok = parser->is_header_done();
  if ((ec && !(ec == http::error::body_limit && header_ok)) || aborted.load() ||
      timed_out) {
    RetryStaleOr(KindOf(ec),
                 absl::StrCat("read response from ", ep->url.host_header, ": ",
                              ec.message()),
                 reused && !parser->got_some() && IsStaleConnectionError(ec));
    return;
  }
  HttpResponse r;
  const auto& res = parser->get();
  r.status = res.result_int();
  r.body_prefix = res.body().substr(0, kBodyPrefixBytes);
  auto it = res.find(http::field::retry_after);
  if (it != res.end()) r.retry_after = std::string(it->value());
  if (ec || !res.keep_alive()) Reset();
  Finish(std::move(r));
}

HttpClient::HttpClient(asio::io_context& io_context,
                       std::weak_ptr<HostLookup> lookup)
    : impl_(std::make_shared<Impl>(io_context, std::move(lookup))) {}

HttpClient::~HttpClient() = default;

void HttpClient::Post(std::shared_ptr<const Endpoint> ep,
                      const Headers& headers, std::string_view authorization,
                      std::string_view body, absl::Duration timeout,
                      std::function<void(HttpResponse)> done) {
  Impl& im = *impl_;
  im.done = std::move(done);
  im.ep = std::move(ep);
  im.timed_out = false;
  im.retried_stale = false;
  if (im.aborted.load()) {
    // Through the strand's queue: `done` never runs inside Post.
    asio::post(im.strand, [self = impl_] {
      self->Fail(HttpResponse::Error::kAborted, "aborted");
    });
    return;
  }
  if (im.open && im.endpoint_id != im.ep->id) im.Reset();

  const Endpoint& e = *im.ep;
  im.request.emplace(http::verb::post, e.url.target, 11);
  Impl::Request& req = *im.request;
  req.set(http::field::host, e.url.host_header);
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!authorization.empty())
    req.set(http::field::authorization, authorization);
  req.keep_alive(true);
  req.body() = boost::beast::span<const char>(body.data(), body.size());
  req.prepare_payload();

  const uint64_t gen = ++im.request_gen;
  im.deadline_timer.expires_after(ToChrono(timeout));
  im.deadline_timer.async_wait([self = impl_, gen](error_code ec) {
    if (ec || gen != self->request_gen) return;
    self->timed_out = true;
    self->Shut();
  });
  im.Start();
}

void HttpClient::After(absl::Duration d, std::function<void(bool)> fn) {
  Impl& im = *impl_;
  if (im.aborted.load()) {
    asio::post(im.strand, [fn = std::move(fn)] { fn(false); });
    return;
  }
  im.wait_timer.expires_after(ToChrono(d));
  im.wait_timer.async_wait([fn = std::move(fn)](error_code ec) { fn(!ec); });
}

void HttpClient::Schedule(std::function<void()> fn) {
  asio::post(impl_->strand, std::move(fn));
}

void HttpClient::Defer(std::function<void()> fn) {
  asio::defer(impl_->strand, std::move(fn));
}

void HttpClient::Abort() {
  impl_->aborted.store(true);
  asio::post(impl_->strand, [self = impl_] {
    self->Shut();
    self->wait_timer.cancel();
  });
}

bool HttpClient::connected() const { return impl_->open; }

void HttpClient::Close() { impl_->Reset(); }

struct PrivateLoop::Impl {
  asio::io_context ioc;
  // Keeps run() going while there is nothing to do.
  asio::executor_work_guard<asio::io_context::executor_type> work =
      asio::make_work_guard(ioc);
  std::vector<std::thread> threads;
};

PrivateLoop::PrivateLoop() : impl_(std::make_unique<Impl>()) {}

PrivateLoop::~PrivateLoop() {
  impl_->work.reset();
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
}

asio::io_context& PrivateLoop::context() { return impl_->ioc; }

void PrivateLoop::Run(int threads, const std::function<void()>& on_start) {
  for (int i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([this, on_start] {
      if (on_start) on_start();
      impl_->ioc.run();
    });
  }
}

}  // namespace promrelay::forward
