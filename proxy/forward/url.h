// Parsing of a destination's remote_write URL into what the HTTP client
// needs, and a form of it that is safe to log.
#ifndef PROMRELAY_PROXY_FORWARD_URL_H_
#define PROMRELAY_PROXY_FORWARD_URL_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace promrelay::forward {

struct Url {
  bool https = false;
  std::string host;         // without brackets for IPv6 literals
  std::string port;         // always set (80/443 by default)
  std::string host_header;  // host[:port] as sent in Host
  std::string target;       // path and query, at least "/"
  bool host_is_ip = false;  // IPv4 or IPv6 literal: no SNI, IP SAN check
  // user:password@ from the URL (percent-decoded), used when the
  // destination has no basic_auth.
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string redacted;  // scheme://host[:port]/path, no userinfo or query
};

// Accepts http:// and https:// URLs. Errors never contain the userinfo.
absl::StatusOr<Url> ParseUrl(std::string_view url);

// The URL without userinfo and query (they may hold secrets), for logs and
// error messages. Works on malformed URLs too.
std::string RedactUrl(std::string_view url);

}  // namespace promrelay::forward

#endif  // PROMRELAY_PROXY_FORWARD_URL_H_
