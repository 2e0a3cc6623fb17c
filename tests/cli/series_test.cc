// The series notation test-rules reads.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/cli/series.h"

namespace promrelay::cli {
namespace {

LabelSet Parse(const std::string& line) {
  auto r = ParseSeriesLine(line);
  INFO(line << ": " << r.status());
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  return **r;
}

std::string Error(const std::string& line) {
  auto r = ParseSeriesLine(line);
  INFO(line);
  REQUIRE_FALSE(r.ok());
  return std::string(r.status().message());
}

TEST_CASE("Prometheus notation", "[series]") {
  CHECK(Parse("up") == LabelSet{{"__name__", "up"}});
  CHECK(Parse("up{}") == LabelSet{{"__name__", "up"}});
  CHECK(Parse("up{job=\"a\",instance=\"b:1\"}") ==
        LabelSet{{"__name__", "up"}, {"instance", "b:1"}, {"job", "a"}});
  CHECK(Parse("  up { job = \"a\" , } ") ==
        LabelSet{{"__name__", "up"}, {"job", "a"}});
  CHECK(Parse("{__name__=\"up\",job=\"a\"}") ==
        LabelSet{{"__name__", "up"}, {"job", "a"}});
  CHECK(Parse("{job=\"a\"}") == LabelSet{{"job", "a"}});
  CHECK(Parse("ns:metric:rate5m{a=\"\"}") ==
        LabelSet{{"__name__", "ns:metric:rate5m"}, {"a", ""}});
}

TEST_CASE("values, timestamps and exemplars are ignored", "[series]") {
  LabelSet want{{"__name__", "up"}, {"job", "a"}};
  for (const char* line :
       {"up{job=\"a\"} 1", "up{job=\"a\"} 1 1700000000000",
        "up{job=\"a\"}\t-1.5e+09\t-5", "up{job=\"a\"} NaN",
        "up{job=\"a\"} +Inf", "up{job=\"a\"} -Inf 1",
        "up{job=\"a\"} 1 # {trace_id=\"x\"} 1", "up{job=\"a\"}\r"}) {
    CHECK(Parse(line) == want);
  }
  CHECK(Error("up{job=\"a\"} one").find("not a sample value") !=
        std::string::npos);
  CHECK(Error("up{job=\"a\"} 1 1.5").find("not a timestamp") !=
        std::string::npos);
  CHECK(Error("up{job=\"a\"} 1 2 3").find("unexpected text") !=
        std::string::npos);
}

TEST_CASE("escapes and quoted UTF-8 names", "[series]") {
  CHECK(Parse(R"(m{a="x\"y\\z\nw"})") ==
        LabelSet{{"__name__", "m"}, {"a", "x\"y\\z\nw"}});
  CHECK(Parse(R"({"my.label"="x", "utf-8 ünïcode"="ü"})") ==
        LabelSet{{"my.label", "x"}, {"utf-8 ünïcode", "ü"}});
  CHECK(Parse(R"({"my.metric", a="b"})") ==
        LabelSet{{"__name__", "my.metric"}, {"a", "b"}});
  CHECK(Parse(R"({a="b", "my.metric"})") ==
        LabelSet{{"__name__", "my.metric"}, {"a", "b"}});
  CHECK(Error(R"(m{a="\t"})").find("unknown escape") != std::string::npos);
  CHECK(Error(R"(m{"x", a="b"})").find("metric name is given twice") !=
        std::string::npos);
}

TEST_CASE("JSON objects", "[series]") {
  CHECK(Parse(R"({"__name__":"up","job":"a"})") ==
        LabelSet{{"__name__", "up"}, {"job", "a"}});
  CHECK(Parse(R"( { "b" : "x\u00fc\n" , "a":"\"" } 1 2)") ==
        LabelSet{{"a", "\""}, {"b", "xü\n"}});
  CHECK(Parse(R"({"emoji":"\ud83d\ude00"})") ==
        LabelSet{{"emoji", "\xF0\x9F\x98\x80"}});
  CHECK(Error(R"({"a":1})").find("must be a string") != std::string::npos);
  CHECK(Error(R"({"a":"b","a":"c"})").find("duplicate") != std::string::npos);
  CHECK(Error(R"({"a":"b")").find("JSON") != std::string::npos);
  CHECK(Error(R"({"a":"b"} x)").find("not a sample value") !=
        std::string::npos);
}

TEST_CASE("skipped lines and malformed lines", "[series]") {
  for (const char* skip : {"", "   ", "# comment", "  # indented", "\r"}) {
    auto r = ParseSeriesLine(skip);
    REQUIRE(r.ok());
    CHECK_FALSE(r->has_value());
  }
  CHECK(Error("{}").find("no labels") != std::string::npos);
  CHECK(Error("up{a=\"b\",a=\"c\"}").find("given twice") != std::string::npos);
  CHECK(Error("up{__name__=\"x\"}").find("given twice") != std::string::npos);
  CHECK(Error("up{a=b}").find("double-quoted") != std::string::npos);
  CHECK(Error("up{a=\"b\"").find("`,` or `}`") != std::string::npos);
  CHECK(Error("up{a=\"b}").find("unterminated") != std::string::npos);
  CHECK(Error("up{a}").find("`=`") != std::string::npos);
  CHECK(Error("up{1a=\"b\"}").find("label name") != std::string::npos);
  CHECK(Error("=up").find("metric name") != std::string::npos);
  CHECK(Error("up{a=\"\xff\"}").find("UTF-8") != std::string::npos);
  // Errors give the column.
  CHECK(Error("up{a=b}").find("column 6") != std::string::npos);
}

TEST_CASE("rendering", "[series]") {
  LabelSet l{{"__name__", "up"}, {"a.b", "x\"\n"}, {"job", "j"}};
  CHECK(LabelSetToJson(l) == R"({"__name__":"up","a.b":"x\"\n","job":"j"})");
  CHECK(LabelSetToText(l) == R"(up{"a.b"="x\"\n",job="j"})");
  CHECK(LabelSetToText({{"__name__", "a.b"}}) == R"({__name__="a.b"})");
  CHECK(LabelSetToJson({}) == "{}");
  // Rendering parses back to the same set.
  CHECK(Parse(LabelSetToText(l)) == l);
  CHECK(Parse(LabelSetToJson(l)) == l);
}

}  // namespace
}  // namespace promrelay::cli
