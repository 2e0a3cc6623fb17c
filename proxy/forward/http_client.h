// A minimal blocking-style HTTP/1.1 POST client over Boost.Beast for one
// sender thread: one keep-alive connection, plain TCP or TLS, an overall
// deadline per request, and an Abort() other threads can call.
#ifndef PROMRELAY_PROXY_FORWARD_HTTP_CLIENT_H_
#define PROMRELAY_PROXY_FORWARD_HTTP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/forward/url.h"

namespace boost::asio::ssl {
class context;
}

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

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to ep.url with `headers` (Host and Content-Length are
  // added here), reusing the open connection when it belongs to `ep`.
  // Connect, TLS handshake, write and read together get `timeout`. A reused
  // connection that the server had closed while idle is retried once on a
  // fresh one. `body` is sent from where it is (no copy) and must stay valid
  // until Post returns.
  HttpResponse Post(
      const Endpoint& ep,
      const std::vector<std::pair<std::string, std::string>>& headers,
      std::string_view body, absl::Duration timeout);

  // Waits `d`; false when Abort() cut it short.
  bool Sleep(absl::Duration d);

  // From any thread: makes the current and every later Post/Sleep return
  // at once (Post with kAborted).
  void Abort();

  // True while a connection is open (the next Post reuses it).
  bool connected() const;
  void Close();
  uint64_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promrelay::forward

#endif  // PROMRELAY_PROXY_FORWARD_HTTP_CLIENT_H_
