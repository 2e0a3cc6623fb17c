// Runs the real `promrelay` binary: the Starform snapshot test over
// config/starform.yaml, independent checks of the Starform split, and the
// command line's exit codes.
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/cli/json.h"
#include "tests/config/test_util.h"

namespace promrelay::cli {
namespace {

using config::testing::ScopedEnv;
using config::testing::TempDir;

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

std::string SourceDir() { return EnvOr("PROMRELAY_SOURCE_DIR", "."); }
std::string Binary() {
  return EnvOr("PROMRELAY_BINARY_DIR", "build") + "/promrelay";
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs the binary with `args` (already shell-quoted as needed), stdin from
// `stdin_file` or /dev/null.
Run RunBinary(const std::string& args, const std::string& stdin_file = "") {
  TempDir tmp;
  std::string err_path = tmp.path() + "/stderr";
  std::string cmd = Quote(Binary()) + " " + args + " <" +
                    Quote(stdin_file.empty() ? "/dev/null" : stdin_file) +
                    " 2>" + Quote(err_path);
  Run r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadFile(err_path);
  return r;
}

std::string Starform() { return SourceDir() + "/config/starform.yaml"; }
std::string Series() { return SourceDir() + "/tests/cli/starform_series.txt"; }
std::string Golden() {
  return SourceDir() + "/tests/cli/starform.golden.jsonl";
}

TEST_CASE("the binary exists", "[binary]") {
  INFO(Binary());
  REQUIRE(std::ifstream(Binary()).good());
}

TEST_CASE("Starform snapshot: test-rules --golden passes", "[binary]") {
  ScopedEnv id("GRAFANA_CLOUD_INSTANCE_ID", "123456");
  Run r = RunBinary("test-rules --config " + Quote(Starform()) + " --input " +
                    Quote(Series()) + " --golden " + Quote(Golden()));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("golden OK: ") == 0);
  // The Starform rules never need the guard.
  CHECK(r.err.empty());
}

using Labels = std::map<std::string, std::string>;

Labels ToLabels(const JsonValue& v) {
  REQUIRE(v.type == JsonValue::Type::kObject);
  Labels out;
  for (const auto& [k, val] : v.object) {
    REQUIRE(val.type == JsonValue::Type::kString);
    out[k] = val.text;
  }
  return out;
}

TEST_CASE("Starform split, checked independently of the golden file",
          "[binary]") {
  ScopedEnv id("GRAFANA_CLOUD_INSTANCE_ID", "123456");
  Run r = RunBinary("test-rules --config " + Quote(Starform()) + " --input " +
                    Quote(Series()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  const std::set<std::string> kPlatform = {"shuttle", "node-exporter",
                                           "kube-state-metrics", "envoy-self"};
  const std::set<std::string> kIdentifiers = {"project_id", "service_id",
                                              "workspace_id"};
  std::map<std::string, int> jobs;
  std::set<std::string> stripped;  // identifiers removed from platform series
  int platform = 0, customer = 0, customer_with_ids = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    auto v = ParseJson(line, nullptr);
    REQUIRE(v.ok());
    const JsonValue* input = v->Find("input");
    const JsonValue* dests = v->Find("destinations");
    REQUIRE(input != nullptr);
    REQUIRE(dests != nullptr);
    REQUIRE(dests->object.size() == 2);
    // Config order.
    CHECK(dests->object[0].first == "grafana-cloud");
    CHECK(dests->object[1].first == "victoriametrics");
    const JsonValue& gc = dests->object[0].second;
    const JsonValue& vm = dests->object[1].second;
    Labels in = ToLabels(*input);
    std::string job = in.count("job") ? in["job"] : "";
    ++jobs[job];
    if (kPlatform.count(job)) {
      ++platform;
      CHECK(vm.type == JsonValue::Type::kNull);
      REQUIRE(gc.type == JsonValue::Type::kObject);
      Labels got = ToLabels(gc);
      Labels want;
      for (const auto& [k, val] : in) {
        if (kIdentifiers.count(k)) {
          if (!val.empty()) stripped.insert(k);
          continue;
        }
        if (!val.empty()) want[k] = val;
      }
      CHECK(got == want);
      for (const std::string& id : kIdentifiers) CHECK(got.count(id) == 0);
    } else {
      ++customer;
      CHECK(gc.type == JsonValue::Type::kNull);
      REQUIRE(vm.type == JsonValue::Type::kObject);
      // Intact: the series file has no empty values for customers, so the
      // labels must be exactly the input's.
      for (const auto& [k, val] : in) CHECK_FALSE(val.empty());
      CHECK(ToLabels(vm) == in);
      for (const std::string& id : kIdentifiers) {
        if (in.count(id)) {
          ++customer_with_ids;
          break;
        }
      }
    }
  }
  // The data set covers what the test claims to cover.
  for (const char* job : {"shuttle", "node-exporter", "kube-state-metrics",
                          "envoy-self", "cadvisor", "envoy", "kubelet"}) {
    INFO(job);
    CHECK(jobs[job] >= 2);
  }
  CHECK(stripped == kIdentifiers);
  CHECK(platform >= 15);
  CHECK(customer >= 10);
  CHECK(customer_with_ids >= 5);
  // Same count as the golden file has lines.
  std::string golden = ReadFile(Golden());
  CHECK(static_cast<size_t>(platform + customer) ==
        static_cast<size_t>(std::count(golden.begin(), golden.end(), '\n')));
}

TEST_CASE("relabel semantics snapshot through test-rules", "[binary]") {
  // One destination per behaviour of relabel-semantics.md; the golden file
  // was computed from the spec independently (hashmod: md5("baz") mod 1000
  // = 976, md5("foo\\nbar") mod 1000 = 734, as upstream).
  std::string dir = SourceDir() + "/tests/cli/";
  Run r = RunBinary("test-rules --config " + Quote(dir + "semantics.yaml") +
                    " --input " + Quote(dir + "semantics_series.txt") +
                    " --golden " + Quote(dir + "semantics.golden.jsonl"));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out ==
        "golden OK: 7 series match " + dir + "semantics.golden.jsonl\n");
  std::string golden = ReadFile(dir + "semantics.golden.jsonl");
  CHECK(golden.find(R"("a":"baz","h":"976")") != std::string::npos);
  CHECK(golden.find(R"("a":"foo\nbar","h":"734")") != std::string::npos);
}

TEST_CASE("a wrong golden entry fails with a diff", "[binary]") {
  ScopedEnv id("GRAFANA_CLOUD_INSTANCE_ID", "123456");
  TempDir dir;
  std::string golden = ReadFile(Golden());
  // Pretend a platform series was expected to keep project_id.
  std::string from = R"("meter":"cpu_seconds"},"victoriametrics")";
  size_t at = golden.find(from);
  REQUIRE(at != std::string::npos);
  golden.replace(at, from.size(),
                 R"("meter":"cpu_seconds","project_id":"prj_8f2a1c"},)"
                 R"("victoriametrics")");
  std::string path = dir.Write("golden.jsonl", golden);
  Run r = RunBinary("test-rules --config " + Quote(Starform()) + " --input " +
                    Quote(Series()) + " --golden " + Quote(path));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.out.find("@@ series 3: input line 11, golden line 3 @@") !=
        std::string::npos);
  CHECK(r.out.find(" grafana-cloud:\n-  ") != std::string::npos);
  CHECK(r.out.find("FAIL: 1 of ") != std::string::npos);
}

TEST_CASE("test-rules reads standard input", "[binary]") {
  ScopedEnv id("GRAFANA_CLOUD_INSTANCE_ID", "123456");
  TempDir dir;
  std::string in = dir.Write(
      "in.txt", "up{job=\"kube-state-metrics\",service_id=\"s\"} 1\n");
  Run r = RunBinary("test-rules --config " + Quote(Starform()), in);
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(
      r.out ==
      R"({"input":{"__name__":"up","job":"kube-state-metrics","service_id":"s"},)"
      R"("destinations":{"grafana-cloud":{"__name__":"up","job":"kube-state-metrics"},)"
      R"("victoriametrics":null}})"
      "\n");
}

TEST_CASE("starform.yaml needs GRAFANA_CLOUD_INSTANCE_ID", "[binary]") {
  ScopedEnv id("GRAFANA_CLOUD_INSTANCE_ID", nullptr);
  Run r = RunBinary("check-config --syntax-only --config " + Quote(Starform()));
  CHECK(r.code == 1);
  CHECK(r.err.find("remote_write[0].basic_auth.username: environment variable "
                   "GRAFANA_CLOUD_INSTANCE_ID is not set") !=
        std::string::npos);
}

TEST_CASE("check-config on starform.yaml", "[binary]") {
  ScopedEnv id("GRAFANA_CLOUD_INSTANCE_ID", "123456");
  Run syntax =
      RunBinary("check-config --syntax-only --config " + Quote(Starform()));
  INFO(syntax.err);
  CHECK(syntax.code == 0);
  CHECK(syntax.out.find("grafana-cloud: https://") != std::string::npos);

  // The real check reads the token; point it at one that exists.
  TempDir dir;
  std::string token = dir.Write("grafana-token", "glc_abc123\n");
  std::string yaml = ReadFile(Starform());
  const std::string mounted = "/secrets/grafana-token";
  int replaced = 0;
  for (size_t at; (at = yaml.find(mounted)) != std::string::npos; ++replaced) {
    yaml.replace(at, mounted.size(), token);
  }
  REQUIRE(replaced > 0);
  std::string path = dir.Write("starform.yaml", yaml);
  Run full = RunBinary("check-config --config " + Quote(path));
  INFO(full.err);
  CHECK(full.code == 0);
  CHECK(full.out.find("write_relabel_configs: 2 rules, forbidden_labels: 3, "
                      "auth: basic_auth") != std::string::npos);
  CHECK(full.out.find("glc_abc123") == std::string::npos);
  CHECK(full.out.find("123456") == std::string::npos);

  // Without the token mounted, the full check fails at the password_file.
  Run missing = RunBinary("check-config --config " + Quote(Starform()));
  CHECK(missing.code == 1);
  CHECK(missing.err.find("remote_write[0].basic_auth.password_file: cannot "
                         "read \"/secrets/grafana-token\"") !=
        std::string::npos);
}

TEST_CASE("command line: dispatch and exit codes", "[binary]") {
  struct Case {
    const char* args;
    int code;
    const char* out;  // substring of stdout ("" = anything)
    const char* err;  // substring of stderr
  };
  const Case kCases[] = {
      {"", 2, "", "Usage:"},
      {"--help", 0, "promrelay check-config --config FILE", ""},
      {"-h", 0, "Usage:", ""},
      {"--version", 0, "promrelay ", ""},
      {"frobnicate", 2, "", "unknown command \"frobnicate\""},
      {"--frobnicate", 2, "", "unknown flag \"--frobnicate\""},
      {"--config", 2, "", "--config needs a value"},
      {"--config a.yaml --verbose", 2, "", "Run 'promrelay --help'"},
      {"--config a.yaml --help", 0, "Usage: promrelay --config FILE", ""},
      {"--log-level debug", 2, "", "--config FILE is required"},
      {"--config a.yaml --config b.yaml", 2, "", "--config is given twice"},
      {"--config a.yaml --log-level", 2, "", "--log-level needs a value"},
      {"--config a.yaml stray", 2, "", "unexpected argument \"stray\""},
      // Valid run flags reach the proxy, which reports the missing file.
      {"--config=/nonexistent/p.yaml --log.level=info", 1, "",
       "/nonexistent/p.yaml"},
      {"check-config", 2, "", "--config FILE is required"},
      {"check-config --help", 0, "Usage: promrelay check-config", ""},
      {"check-config --config x --bogus", 2, "",
       "Run 'promrelay check-config --help'"},
      {"test-rules --help", 0, "Usage: promrelay test-rules", ""},
      {"test-rules --config x --bogus", 2, "", "unknown flag \"--bogus\""},
      {"check-config --config /nonexistent.yaml", 1, "",
       "cannot read config file"},
      {"test-rules --config /nonexistent.yaml", 1, "",
       "cannot read config file"},
  };
  for (const Case& c : kCases) {
    Run r = RunBinary(c.args);
    INFO("promrelay " << c.args << "\nstdout: " << r.out
                      << "\nstderr: " << r.err);
    CHECK(r.code == c.code);
    CHECK(r.out.find(c.out) != std::string::npos);
    CHECK(r.err.find(c.err) != std::string::npos);
  }
}

}  // namespace
}  // namespace promrelay::cli
