// Mangled config files: the loader must answer with errors, never crash or
// read out of bounds (this test earns its keep under ASan/UBSan).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "proxy/config/config.h"
#include "tests/config/test_util.h"

namespace promrelay::config {
namespace {

std::string ReadExample(const std::string& name) {
  const char* src = std::getenv("PROMRELAY_SOURCE_DIR");
  std::ifstream f(std::string(src ? src : ".") + "/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST_CASE("mangled configs give errors, not crashes", "[fuzz]") {
  testing::ScopedEnv a("CLUSTER_A_TOKEN", "t");
  testing::ScopedEnv b("REMOTE_USER", "u");
  std::string base = ReadExample("config/examples/all-keys.yaml");
  REQUIRE(base.size() > 1000);
  LoadOptions opts;
  opts.read_files = false;
  {
    std::vector<ConfigError> errors;
    auto ok = LoadFromString(base, "all-keys.yaml", &errors, opts);
    for (const auto& e : errors) UNSCOPED_INFO(e.ToString());
    REQUIRE(ok.ok());
  }
  std::mt19937 rng(12345);
  const std::string alphabet = "{}[]:,-#&*!|>'\"\n \t$~?%@`\\0aZ9";
  int failures = 0;
  for (int i = 0; i < 600; ++i) {
    std::string text = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      size_t pos = rng() % text.size();
      switch (rng() % 4) {
        case 0:
          text.erase(pos, 1 + rng() % 8);
          break;
        case 1:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          text[pos] = static_cast<char>(rng() % 256);
          break;
        default:
          text.resize(pos);  // truncated file
      }
      if (text.empty()) text = "x";
    }
    std::vector<ConfigError> errors;
    auto r = LoadFromString(text, "m.yaml", &errors, opts);
    if (!r.ok()) {
      ++failures;
      REQUIRE_FALSE(errors.empty());
      for (const ConfigError& e : errors) {
        CHECK(e.line >= 0);
        CHECK_FALSE(e.message.empty());
      }
    }
  }
  // Most mutations break something; the test must exercise error paths.
  CHECK(failures > 300);
}

TEST_CASE("deeply nested YAML is an error", "[fuzz]") {
  std::string deep = "remote_write: " + std::string(5000, '[');
  auto r = LoadFromString(deep, "d.yaml", nullptr);
  CHECK_FALSE(r.ok());
  std::string deep_map;
  for (int i = 0; i < 3000; ++i) deep_map += std::string(i, ' ') + "a:\n";
  CHECK_FALSE(LoadFromString(deep_map, "d.yaml", nullptr).ok());
}

}  // namespace
}  // namespace promrelay::config
