#include "proxy/forward/url.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "boost/asio/ip/address.hpp"

namespace promrelay::forward {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

struct Split {
  absl::string_view scheme;
  absl::string_view userinfo;
  bool has_userinfo = false;
  absl::string_view hostport;
  absl::string_view path;   // from '/' up to '?' or '#'
  absl::string_view query;  // after '?', up to '#'
  bool has_query = false;
  bool ok = false;
};

Split SplitUrl(absl::string_view url) {
  Split s;
  size_t colon = url.find("://");
  if (colon == absl::string_view::npos) return s;
  s.scheme = url.substr(0, colon);
  absl::string_view rest = url.substr(colon + 3);
  size_t hash = rest.find('#');
  if (hash != absl::string_view::npos) rest = rest.substr(0, hash);
  size_t end = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, end);
  rest =
      end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
  size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    s.has_userinfo = true;
    s.userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
  }
  s.hostport = authority;
  size_t q = rest.find('?');
  s.path = rest.substr(0, q);
  if (q != absl::string_view::npos) {
    s.has_query = true;
    s.query = rest.substr(q + 1);
  }
  s.ok = true;
  return s;
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  Split s = SplitUrl(absl::string_view(url.data(), url.size()));
  if (!s.ok) return "<malformed url>";
  return absl::StrCat(s.scheme, "://", s.hostport, s.path);
}

absl::StatusOr<Url> ParseUrl(std::string_view text) {
  Split s = SplitUrl(absl::string_view(text.data(), text.size()));
  std::string redacted = RedactUrl(text);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("url \"", redacted, "\": ", why));
  };
  if (!s.ok) return bad("want scheme://host[:port]/path");
  Url url;
  std::string scheme = absl::AsciiStrToLower(s.scheme);
  if (scheme == "https") {
    url.https = true;
  } else if (scheme != "http") {
    return bad("scheme must be http or https");
  }
  absl::string_view hostport = s.hostport;
  absl::string_view port;
  if (absl::StartsWith(hostport, "[")) {
    size_t close = hostport.find(']');
    if (close == absl::string_view::npos) return bad("unterminated [ in host");
    url.host = std::string(hostport.substr(1, close - 1));
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after ]");
      port = after.substr(1);
    }
  } else {
    size_t c = hostport.rfind(':');
    if (c != absl::string_view::npos) {
      port = hostport.substr(c + 1);
      hostport = hostport.substr(0, c);
    }
    url.host = std::string(hostport);
  }
  if (url.host.empty()) return bad("empty host");
  for (char c : url.host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '@') {
      return bad("invalid character in host");
    }
  }
  if (port.empty()) {
    url.port = url.https ? "443" : "80";
  } else {
    uint32_t p = 0;
    if (!absl::SimpleAtoi(port, &p) || p == 0 || p > 65535) {
      return bad("invalid port");
    }
    url.port = std::to_string(p);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(url.host, ec);
  url.host_is_ip = !ec;
  std::string host_for_header = url.host.find(':') != std::string::npos
                                    ? absl::StrCat("[", url.host, "]")
                                    : url.host;
  bool default_port = url.port == (url.https ? "443" : "80");
  url.host_header = default_port ? host_for_header
                                 : absl::StrCat(host_for_header, ":", url.port);
  url.target = s.path.empty() ? "/" : std::string(s.path);
  if (s.has_query) absl::StrAppend(&url.target, "?", s.query);
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return bad("path contains spaces or control characters");
    }
  }
  if (s.has_userinfo) {
    absl::string_view user = s.userinfo, pass;
    bool has_pass = false;
    size_t c = s.userinfo.find(':');
    if (c != absl::string_view::npos) {
      user = s.userinfo.substr(0, c);
      pass = s.userinfo.substr(c + 1);
      has_pass = true;
    }
    auto u = PercentDecode(user);
    auto p = PercentDecode(pass);
    if (!u || !p) return bad("bad percent-encoding in userinfo");
    url.username = *u;
    if (has_pass) url.password = *p;
  }
  url.redacted = absl::StrCat(url.https ? "https" : "http", "://",
                              url.host_header, s.path.empty() ? "/" : s.path);
  return url;
}

}  // namespace promrelay::forward
