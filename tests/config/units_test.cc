// Durations, byte sizes and ${ENV} expansion.
#include <catch2/catch.hpp>

#include "proxy/config/config.h"
#include "tests/config/test_util.h"

namespace promrelay::config {
namespace {

absl::Duration D(const std::string& text) {
  auto d = ParseDuration(text);
  INFO(text << ": " << d.status());
  REQUIRE(d.ok());
  return *d;
}

TEST_CASE("ParseDuration accepts Prometheus durations", "[units]") {
  CHECK(D("30ms") == absl::Milliseconds(30));
  CHECK(D("5s") == absl::Seconds(5));
  CHECK(D("1m") == absl::Minutes(1));
  CHECK(D("1m30s") == absl::Seconds(90));
  CHECK(D("1h") == absl::Hours(1));
  CHECK(D("1d") == absl::Hours(24));
  CHECK(D("1w") == absl::Hours(24 * 7));
  CHECK(D("1y") == absl::Hours(24 * 365));
  CHECK(D("1h2m3s4ms") == absl::Hours(1) + absl::Minutes(2) + absl::Seconds(3) +
                              absl::Milliseconds(4));
  CHECK(D("0") == absl::ZeroDuration());
  CHECK(D("0s") == absl::ZeroDuration());
  CHECK(D("1500ms") == absl::Milliseconds(1500));
  CHECK(D("90m") == absl::Minutes(90));
}

TEST_CASE("ParseDuration rejects what Prometheus rejects", "[units]") {
  for (const char* bad :
       {"", "5", "-1s", "1.5s", "s", "1S", "1m1h", "1s1s", "1ms1s", " 1s",
        "1s ", "1 s", "1us", "1ns", "+1s", "1h-1m", "0x10s", "1mss"}) {
    INFO("\"" << bad << "\"");
    CHECK_FALSE(ParseDuration(bad).ok());
  }
  auto bare = ParseDuration("5");
  CHECK(std::string(bare.status().message()).find("add a unit") !=
        std::string::npos);
  // Larger than int64 nanoseconds.
  CHECK_FALSE(ParseDuration("300y").ok());
  CHECK_FALSE(ParseDuration("99999999999999999999999999s").ok());
  CHECK(ParseDuration("290y").ok());
}

TEST_CASE("DurationString prints the Prometheus form", "[units]") {
  CHECK(DurationString(absl::ZeroDuration()) == "0s");
  CHECK(DurationString(absl::Seconds(90)) == "1m30s");
  CHECK(DurationString(absl::Milliseconds(30)) == "30ms");
  CHECK(DurationString(absl::Hours(24 * 8)) == "1w1d");
  for (const char* text : {"1y2w3d4h5m6s7ms", "5s", "1h"}) {
    CHECK(DurationString(D(text)) == text);
  }
}

TEST_CASE("ParseByteSize", "[units]") {
  auto B = [](const std::string& text) {
    auto n = ParseByteSize(text);
    INFO(text << ": " << n.status());
    REQUIRE(n.ok());
    return *n;
  };
  CHECK(B("1024") == 1024);
  CHECK(B("0") == 0);
  CHECK(B("512MiB") == 512ull << 20);
  CHECK(B("1GiB") == 1ull << 30);
  CHECK(B("2TiB") == 2ull << 40);
  CHECK(B("1KiB") == 1024);
  CHECK(B("100MB") == 100000000ull);
  CHECK(B("1KB") == 1000);
  CHECK(B("3GB") == 3000000000ull);
  CHECK(B("7B") == 7);
  for (const char* bad :
       {"", "MiB", "1.5GiB", "-1", "1 MiB", "1mib", "1Mi", "1M", "1GiBs",
        "0x10", "18446744073709551616", "17179869184GiB"}) {
    INFO("\"" << bad << "\"");
    CHECK_FALSE(ParseByteSize(bad).ok());
  }
  CHECK(B("18446744073709551615") == UINT64_MAX);
}

TEST_CASE("ExpandEnv", "[units]") {
  testing::ScopedEnv a("PROMRELAY_TEST_A", "alpha");
  testing::ScopedEnv empty("PROMRELAY_TEST_EMPTY", "");
  testing::ScopedEnv unset("PROMRELAY_TEST_UNSET", nullptr);
  auto E = [](const std::string& text) {
    auto s = ExpandEnv(text);
    INFO(text << ": " << s.status());
    REQUIRE(s.ok());
    return *s;
  };
  CHECK(E("${PROMRELAY_TEST_A}") == "alpha");
  CHECK(E("x-${PROMRELAY_TEST_A}-${PROMRELAY_TEST_A}") == "x-alpha-alpha");
  CHECK(E("${PROMRELAY_TEST_EMPTY}") == "");
  CHECK(E("$$") == "$");
  CHECK(E("$${PROMRELAY_TEST_A}") == "${PROMRELAY_TEST_A}");
  CHECK(E("pa$word") == "pa$word");  // a lone $ is literal
  CHECK(E("end$") == "end$");
  CHECK(E("$1") == "$1");
  CHECK(E("no refs") == "no refs");

  auto missing = ExpandEnv("a ${PROMRELAY_TEST_UNSET} b");
  REQUIRE_FALSE(missing.ok());
  CHECK(std::string(missing.status().message()) ==
        "environment variable PROMRELAY_TEST_UNSET is not set");
  CHECK_FALSE(ExpandEnv("${").ok());
  CHECK_FALSE(ExpandEnv("${PROMRELAY_TEST_A").ok());
  CHECK_FALSE(ExpandEnv("${}").ok());
  CHECK_FALSE(ExpandEnv("${1}").ok());
  CHECK_FALSE(ExpandEnv("${A-B}").ok());
}

}  // namespace
}  // namespace promrelay::config
