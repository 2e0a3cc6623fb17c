#include <catch2/catch.hpp>

#include "absl/time/time.h"
#include "proxy/forward/retry.h"
#include "proxy/forward/url.h"

namespace promrelay::forward {
namespace {

TEST_CASE("ParseUrl splits scheme, host, port and target") {
  auto u = ParseUrl("https://prometheus-prod-01.grafana.net/api/prom/push");
  REQUIRE(u.ok());
  CHECK(u->https);
  CHECK(u->host == "prometheus-prod-01.grafana.net");
  CHECK(u->port == "443");
  CHECK(u->host_header == "prometheus-prod-01.grafana.net");
  CHECK(u->target == "/api/prom/push");
  CHECK(!u->host_is_ip);
  CHECK(!u->username);

  u = ParseUrl("HTTP://10.0.0.1:8428");
  REQUIRE(u.ok());
  CHECK(!u->https);
  CHECK(u->port == "8428");
  CHECK(u->host_header == "10.0.0.1:8428");
  CHECK(u->target == "/");
  CHECK(u->host_is_ip);

  u = ParseUrl("http://[::1]:9201/api/v1/write?tenant=a#frag");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->host_is_ip);
  CHECK(u->host_header == "[::1]:9201");
  CHECK(u->target == "/api/v1/write?tenant=a");
  CHECK(u->redacted == "http://[::1]:9201/api/v1/write");

  u = ParseUrl("http://vm:80/x");
  REQUIRE(u.ok());
  CHECK(u->host_header == "vm");
}

TEST_CASE("ParseUrl takes userinfo but never shows it") {
  auto u = ParseUrl("https://inst%3A1:p%40ss:w@host.example/push?k=v");
  REQUIRE(u.ok());
  CHECK(*u->username == "inst:1");
  CHECK(*u->password == "p@ss:w");
  CHECK(u->redacted == "https://host.example/push");
  CHECK(RedactUrl("https://user:secret@host/p?token=abc") == "https://host/p");

  auto bad = ParseUrl("https://user:secret@host:99999/");
  REQUIRE(!bad.ok());
  CHECK(std::string(bad.status().message()).find("secret") ==
        std::string::npos);
}

TEST_CASE("ParseUrl rejects what it cannot send to") {
  for (const char* url :
       {"", "host:9201/api", "ftp://host/", "http:///path", "http://host:0/",
        "http://host:abc/", "http://[::1/", "http://ho st/", "http://h/a b"}) {
    INFO(url);
    CHECK(!ParseUrl(url).ok());
  }
}

TEST_CASE("ParseRetryAfter reads seconds and HTTP dates") {
  absl::Time now = absl::FromUnixSeconds(1445412480);  // 2015-10-21 07:28:00Z
  CHECK(*ParseRetryAfter("120", now) == absl::Seconds(120));
  CHECK(*ParseRetryAfter(" 0 ", now) == absl::ZeroDuration());
  CHECK(*ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now) ==
        absl::Seconds(30));
  CHECK(*ParseRetryAfter("Wednesday, 21-Oct-15 07:29:00 GMT", now) ==
        absl::Seconds(60));
  CHECK(*ParseRetryAfter("Wed Oct 21 07:28:10 2015", now) == absl::Seconds(10));
  CHECK(*ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now) ==
        absl::ZeroDuration());
  CHECK(!ParseRetryAfter("", now));
  CHECK(!ParseRetryAfter("soon", now));
  CHECK(!ParseRetryAfter("-5", now));
  CHECK(!ParseRetryAfter("1.5", now));
}

TEST_CASE("Backoff doubles from min to max with jitter") {
  Backoff b(absl::Milliseconds(30), absl::Milliseconds(200), 42);
  absl::Duration expect = absl::Milliseconds(30);
  for (int i = 0; i < 10; ++i) {
    absl::Duration d = b.Next();
    CHECK(d >= expect / 2);
    CHECK(d <= expect);
    expect = std::min(expect * 2, absl::Milliseconds(200));
  }
  b.Reset();
  CHECK(b.Next() <= absl::Milliseconds(30));
}

TEST_CASE("Classify decides retry, drop or success") {
  CHECK(Classify(204, true) == Verdict::kSuccess);
  CHECK(Classify(200, true) == Verdict::kSuccess);
  CHECK(Classify(0, true) == Verdict::kRetry);
  CHECK(Classify(500, false) == Verdict::kRetry);
  CHECK(Classify(503, false) == Verdict::kRetry);
  CHECK(Classify(429, true) == Verdict::kRetry);
  CHECK(Classify(429, false) == Verdict::kDrop);
  CHECK(Classify(400, true) == Verdict::kDrop);
  CHECK(Classify(401, true) == Verdict::kDrop);
  CHECK(Classify(301, true) == Verdict::kDrop);
  CHECK(HttpErrorReason(503) == "http_5xx");
  CHECK(HttpErrorReason(404) == "http_4xx");
  CHECK(HttpErrorReason(429) == "http_429");
  CHECK(HttpErrorReason(302) == "http_other");
}

}  // namespace
}  // namespace promrelay::forward
