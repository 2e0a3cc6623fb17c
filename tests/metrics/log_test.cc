#include "proxy/metrics/log.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace promrelay::logging {
namespace {

TEST_CASE("logfmt line quotes and escapes values") {
  absl::Time ts = absl::FromUnixMillis(1714557600123);
  std::string line = FormatLine(ts, Level::kWarn, "send failed",
                                {{"destination", "vm"},
                                 {"error", "a \"quoted\"\nthing"},
                                 {"empty", ""},
                                 {"count", 42},
                                 {"ok", true},
                                 {"ratio", 0.5}});
  CHECK(line ==
        "ts=2024-05-01T10:00:00.123Z level=warn msg=\"send failed\" "
        "destination=vm error=\"a \\\"quoted\\\"\\nthing\" empty=\"\" "
        "count=42 ok=true ratio=0.5");
}

TEST_CASE("levels filter and the sink receives whole lines") {
  std::vector<std::string> lines;
  SetSinkForTesting([&](std::string_view l) { lines.emplace_back(l); });
  Level old = GetLevel();
  SetLevel(Level::kWarn);
  Info("hidden");
  Warn("shown", {{"k", "v"}});
  Error("also shown", {{"status", absl::InvalidArgumentError("bad")}});
  SetLevel(old);
  SetSinkForTesting(nullptr);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("level=warn msg=shown k=v\n") != std::string::npos);
  CHECK(lines[1].find("status=\"INVALID_ARGUMENT: bad\"") != std::string::npos);
}

TEST_CASE("ParseLevel") {
  Level l;
  REQUIRE(ParseLevel("DEBUG", &l));
  CHECK(l == Level::kDebug);
  REQUIRE(ParseLevel("warning", &l));
  CHECK(l == Level::kWarn);
  CHECK_FALSE(ParseLevel("loud", &l));
}

TEST_CASE("rate limiter lets one through per interval and counts the rest") {
  RateLimiter limiter(absl::Hours(1));
  uint64_t suppressed = 99;
  CHECK(limiter.Allow(&suppressed));
  CHECK(suppressed == 0);
  CHECK_FALSE(limiter.Allow(&suppressed));
  CHECK_FALSE(limiter.Allow(nullptr));
  RateLimiter always(absl::ZeroDuration());
  CHECK(always.Allow(&suppressed));
  CHECK(always.Allow(&suppressed));
}

}  // namespace
}  // namespace promrelay::logging
