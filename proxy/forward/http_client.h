// The HTTP/1.1 POST client of one sender shard over Boost.Beast: one
// keep-alive connection, plain TCP or TLS, an overall deadline per request,
// driven by callbacks on an io_context (the proxy's I/O threads, or a
// sender's own) rather than a thread that blocks per request.
#ifndef PROMRELAY_PROXY_FORWARD_HTTP_CLIENT_H_
#define PROMRELAY_PROXY_FORWARD_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/forward/url.h"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace promrelay::forward {

// Where and how to connect; immutable and shared by a destination's shards.
// A reload that changes any of it makes a new Endpoint with a new id, and a
// client whose connection belongs to another id reconnects.
struct Endpoint {
  Url url;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null for http://
  std::string verify_name;  // tls_config.server_name, else the URL host
  bool verify_name_is_ip = false;
  std::string sni;  // empty for IP literals (RFC 6066 forbids them)
  bool insecure_skip_verify = false;
  uint64_t id = 0;
};

// Parses the URL and builds the TLS context: system CA bundle or ca_file,
// optional client certificate. Errors name the field and file, never a
// secret.
absl::StatusOr<std::shared_ptr<const Endpoint>> MakeEndpoint(
    const std::string& url, const config::ClientTls& tls);

struct HttpResponse {
  enum class Error { kNone, kNetwork, kTimeout, kTls, kAborted };
  Error error = Error::kNone;
  std::string message;      // what failed, when error != kNone; no secrets
  int status = 0;           // HTTP status when error == kNone
  std::string body_prefix;  // first bytes of the response body
  std::string retry_after;  // Retry-After header, if any
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Host name lookups (getaddrinfo, which blocks) on a thread of their own,
// for one destination's clients: a destination whose DNS hangs delays only
// its own connects. Destroying it waits for a lookup in progress; no
// callback runs after that.
class HostLookup;
std::shared_ptr<HostLookup> NewHostLookup();

// Everything the client calls back (Post's `done`, and the functions given
// to After, Schedule and Defer) runs one at a time on the client's strand,
// never two at once, so the caller's state needs no lock as long as it is
// only touched from there.
class HttpClient {
 public:
  // Host names are looked up on `lookup` while it exists (else the client
  // fails its connects); null: on io_context's own resolver thread.
  explicit HttpClient(boost::asio::io_context& io_context,
                      std::weak_ptr<HostLookup> lookup = {});
  // Handlers still pending keep the connection (and its state) until they
  // have run.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Strand only. POSTs `body` to ep->url with `headers` and, unless empty,
  // `authorization` as the Authorization header (Host and Content-Length
  // are added here), reusing the open connection when it
  // belongs to `ep`. Connect, TLS handshake, write and read together get
  // `timeout`. A reused connection that the server had closed while idle is
  // retried once on a fresh one. `body` is sent from where it is (no copy)
  // and must stay valid until `done` runs, which it does exactly once.
  void Post(std::shared_ptr<const Endpoint> ep, const Headers& headers,
            std::string_view authorization, std::string_view body,
            absl::Duration timeout, std::function<void(HttpResponse)> done);

  // Strand only. Calls fn(true) after `d`; fn(false) once an Abort() or a
  // later After() cancels the wait.
  void After(absl::Duration d, std::function<void(bool)> fn);

  // Any thread: runs `fn` on the strand, on whichever thread of the loop
  // is free.
  void Schedule(std::function<void()> fn);

  // Any thread: runs `fn` on the strand after whatever the calling thread
  // is running now. On a thread of this io_context that is the same thread,
  // right after the current handler (an ingest request's handler answers
  // its client first), and no other thread may take it: a caller that then
  // blocks (waits for the strand) must use Schedule(). From elsewhere it is
  // Schedule().
  void Defer(std::function<void()> fn);

  // Any thread: makes the current and every later Post return kAborted and
  // cancels After's wait.
  void Abort();

  // Strand only: true while a connection is open (the next Post reuses it).
  bool connected() const;
  void Close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// An io_context with threads of its own, for a sender that is not given
// one: it runs until destroyed (stopped, then joined).
class PrivateLoop {
 public:
  PrivateLoop();
  ~PrivateLoop();
  PrivateLoop(const PrivateLoop&) = delete;
  PrivateLoop& operator=(const PrivateLoop&) = delete;

  boost::asio::io_context& context();
  // Starts `threads` threads; each calls `on_start` first (may be null).
  void Run(int threads, const std::function<void()>& on_start);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promrelay::forward

#endif  // PROMRELAY_PROXY_FORWARD_HTTP_CLIENT_H_
