// The small JSON reader/writer behind test-rules' golden files.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/cli/json.h"

namespace promrelay::cli {
namespace {

TEST_CASE("ParseJson values", "[json]") {
  size_t used = 0;
  std::string text =
      R"({"a":null,"b":[1,-2.5e3,true,false],"c":{"d":"e"}} tail)";
  auto v = ParseJson(text, &used);
  REQUIRE(v.ok());
  CHECK(text.substr(used) == " tail");
  REQUIRE(v->type == JsonValue::Type::kObject);
  CHECK(v->Find("a")->type == JsonValue::Type::kNull);
  const JsonValue* b = v->Find("b");
  REQUIRE(b->array.size() == 4);
  CHECK(b->array[1].text == "-2.5e3");
  CHECK(b->array[2].boolean);
  CHECK(v->Find("c")->Find("d")->text == "e");
  CHECK(v->Find("zzz") == nullptr);
}

TEST_CASE("ParseJson errors", "[json]") {
  for (const char* bad :
       {"", "{", "{\"a\"}", "{\"a\":}", "[1,]", "\"abc", "\"\\x\"",
        "\"\\ud800\"", "nul", "{\"a\":1,\"a\":2}", "\"a\nb\""}) {
    INFO(bad);
    CHECK_FALSE(ParseJson(bad, nullptr).ok());
  }
  std::string deep(100, '[');
  CHECK_FALSE(ParseJson(deep, nullptr).ok());
}

TEST_CASE("AppendJsonString round-trips", "[json]") {
  std::string in =
      "q\"b\\n\n\t\r\x01"
      "ü";
  std::string out;
  AppendJsonString(&out, in);
  CHECK(out == "\"q\\\"b\\\\n\\n\\t\\r\\u0001ü\"");
  auto back = ParseJson(out, nullptr);
  REQUIRE(back.ok());
  CHECK(back->text == in);
}

}  // namespace
}  // namespace promrelay::cli
