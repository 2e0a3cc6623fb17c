// `promrelay test-rules` in process: routing order (global rules, then each
// destination's rules, then the forbidden-label guard), output format, input
// errors, and the --golden / --update snapshot mode.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/cli/cli.h"
#include "tests/config/test_util.h"

namespace promrelay::cli {
namespace {

using config::testing::TempDir;

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run TestRulesWith(std::vector<std::string> args,
                  const std::string& stdin_text) {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  Run r;
  r.code = TestRules(args, in, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Global rules drop env=dev and add region; "a" keeps job=keep*, strips
// `secret`; "b" does nothing but guards `secret`; "c" adds a forbidden label.
constexpr char kConfig[] = R"(relabel_configs:
  - {source_labels: [env], regex: dev, action: drop}
  - {target_label: region, replacement: eu}
remote_write:
  - name: a
    url: http://a/api/v1/write
    write_relabel_configs:
      - {source_labels: [job], regex: keep.*, action: keep}
      - {regex: secret, action: labeldrop}
    forbidden_labels: [secret]
  - name: b
    url: http://b/api/v1/write
    forbidden_labels: [secret]
  - name: c
    url: http://c/api/v1/write
    write_relabel_configs:
      - {target_label: leaked, replacement: "yes"}
    forbidden_labels: [leaked]
)";

TEST_CASE("test-rules routes like the proxy and prints JSON lines",
          "[test-rules]") {
  TempDir dir;
  std::string config = dir.Write("p.yaml", kConfig);
  std::string input = R"(# comment
up{job="keep-me",secret="s"} 1 1700000000000

{"__name__":"up","job":"other"}
up{job="keep-me",env="dev"}
{"x.y"="q\"\\\n", job="keeper"}
)";
  Run r = TestRulesWith({"--config", config}, input);
  INFO(r.err);
  REQUIRE(r.code == kExitOk);
  std::vector<std::string> lines;
  std::istringstream s(r.out);
  for (std::string l; std::getline(s, l);) lines.push_back(l);
  REQUIRE(lines.size() == 4);
  CHECK(
      lines[0] ==
      R"({"input":{"__name__":"up","job":"keep-me","secret":"s"},)"
      R"("destinations":{"a":{"__name__":"up","job":"keep-me","region":"eu"},)"
      R"("b":null,"c":null}})");
  CHECK(lines[1] ==
        R"({"input":{"__name__":"up","job":"other"},"destinations":{"a":null,)"
        R"("b":{"__name__":"up","job":"other","region":"eu"},"c":null}})");
  // Dropped by the global rules: null everywhere.
  CHECK(lines[2] == R"({"input":{"__name__":"up","env":"dev","job":"keep-me"},)"
                    R"("destinations":{"a":null,"b":null,"c":null}})");
  CHECK(lines[3] ==
        R"({"input":{"job":"keeper","x.y":"q\"\\\n"},"destinations":{)"
        R"("a":{"job":"keeper","region":"eu","x.y":"q\"\\\n"},)"
        R"("b":{"job":"keeper","region":"eu","x.y":"q\"\\\n"},"c":null}})");
  // The guard explains every null it causes, with the input line.
  CHECK(r.err.find("line 2: b: the series still carries forbidden label(s) "
                   "secret") != std::string::npos);
  CHECK(r.err.find("line 2: c: the series still carries forbidden label(s) "
                   "leaked") != std::string::npos);
  CHECK(r.err.find("line 4: c:") != std::string::npos);
  CHECK(r.err.find("line 5:") == std::string::npos);  // dropped before
}

TEST_CASE("test-rules reads --input and names bad lines", "[test-rules]") {
  TempDir dir;
  std::string config = dir.Write("p.yaml", kConfig);
  std::string input = dir.Write("in.txt", "up{job=\"a\"}\nup{job=}\n\n{}\n");
  Run r = TestRulesWith({"--config", config, "--input", input}, "");
  CHECK(r.code == kExitFailure);
  CHECK(r.out.empty());
  CHECK(r.err.find(input + ":2: column 8: want a double-quoted label value") !=
        std::string::npos);
  CHECK(r.err.find(input + ":4: the series has no labels") !=
        std::string::npos);
  CHECK(r.err.find("2 bad lines") != std::string::npos);

  Run missing =
      TestRulesWith({"--config", config, "--input", "/nonexistent/in"}, "");
  CHECK(missing.code == kExitFailure);
  CHECK(missing.err.find("cannot read /nonexistent/in") != std::string::npos);
}

TEST_CASE("test-rules reports config errors and does not need secret files",
          "[test-rules]") {
  TempDir dir;
  std::string bad = dir.Write("bad.yaml", R"(remote_write:
  - name: a
    url: http://a/x
    write_relabel_configs:
      - {source_labels: [job], regex: "(", action: keep}
)");
  Run r = TestRulesWith({"--config", bad}, "up\n");
  CHECK(r.code == kExitFailure);
  CHECK(r.err.find("bad.yaml:5:39: remote_write[0].write_relabel_configs[0]."
                   "regex: error parsing regexp") != std::string::npos);

  std::string secret = dir.Write("secret.yaml", R"(remote_write:
  - name: a
    url: https://a/x
    basic_auth: {username: u, password_file: /nonexistent/secret}
    tls_config: {ca_file: /nonexistent/ca.pem}
)");
  Run ok = TestRulesWith({"--config", secret}, "up\n");
  INFO(ok.err);
  CHECK(ok.code == kExitOk);
  CHECK(ok.out ==
        "{\"input\":{\"__name__\":\"up\"},\"destinations\":{\"a\":{\"__name__\""
        ":\"up\"}}}\n");
}

TEST_CASE("test-rules --golden compares and --update rewrites",
          "[test-rules]") {
  TempDir dir;
  std::string config = dir.Write("p.yaml", kConfig);
  std::string input = dir.Write("in.txt",
                                "up{job=\"keep-me\"}\n"
                                "# skipped\n"
                                "up{job=\"other\"}\n");
  std::string golden = dir.path() + "/golden.jsonl";

  // No golden file yet: an error, unless --update creates it.
  Run none = TestRulesWith(
      {"--config", config, "--input", input, "--golden", golden}, "");
  CHECK(none.code == kExitFailure);
  CHECK(none.err.find("create it with --update") != std::string::npos);

  Run update = TestRulesWith(
      {"--config", config, "--input", input, "--golden", golden, "--update"},
      "");
  INFO(update.err);
  REQUIRE(update.code == kExitOk);
  CHECK(update.out.find("updated " + golden + ": 2 series") == 0);
  std::string written = ReadFile(golden);
  Run plain = TestRulesWith({"--config", config, "--input", input}, "");
  CHECK(written == plain.out);

  Run same = TestRulesWith(
      {"--config", config, "--input", input, "--golden", golden}, "");
  CHECK(same.code == kExitOk);
  CHECK(same.out == "golden OK: 2 series match " + golden + "\n");

  SECTION("a changed destination result shows as a diff") {
    // Hand-written golden: different spacing and key order still compare
    // equal; the value of b for series 2 is wrong on purpose.
    dir.Write(
        "golden.jsonl",
        R"({"input": {"job": "keep-me", "__name__": "up"},
                  "destinations": {"c": null, "b": null,
                  "a": {"region": "eu", "job": "keep-me", "__name__": "up"}}}
)"
        "\n"
        R"({"input":{"__name__":"up","job":"other"},"destinations":{"a":null,"b":{"__name__":"up","job":"other"},"c":null}})"
        "\n");
    // The first entry spans lines, which a JSON-lines file may not do.
    Run r = TestRulesWith(
        {"--config", config, "--input", input, "--golden", golden}, "");
    CHECK(r.code == kExitFailure);
    CHECK(r.err.find("golden.jsonl:1:") != std::string::npos);

    dir.Write(
        "golden.jsonl",
        R"({"input": {"job": "keep-me", "__name__": "up"}, "destinations": {"c": null, "b": {"job": "keep-me", "region": "eu", "__name__": "up"}, "a": {"region": "eu", "job": "keep-me", "__name__": "up"}}})"
        "\n\n"
        R"({"input":{"__name__":"up","job":"other"},"destinations":{"a":null,"b":{"__name__":"up","job":"other"},"c":null}})"
        "\n");
    Run diff = TestRulesWith(
        {"--config", config, "--input", input, "--golden", golden}, "");
    INFO(diff.out << diff.err);
    CHECK(diff.code == kExitFailure);
    CHECK(diff.out.find("--- " + golden + " (golden)\n+++ " + input) == 0);
    CHECK(diff.out.find("@@ series 1") == std::string::npos);
    CHECK(diff.out.find("@@ series 2: input line 3, golden line 3 @@\n"
                        " input: up{job=\"other\"}\n"
                        " b:\n"
                        "-  {\"__name__\":\"up\",\"job\":\"other\"}\n"
                        "+  {\"__name__\":\"up\",\"job\":\"other\",\"region\":"
                        "\"eu\"}\n") != std::string::npos);
    CHECK(diff.out.find("FAIL: 1 of 2 series differ") != std::string::npos);
  }

  SECTION("missing, extra and unknown entries") {
    dir.Write(
        "golden.jsonl",
        R"({"input":{"__name__":"up","job":"keep-me"},"destinations":{"a":{"__name__":"up","job":"keep-me","region":"eu"},"b":null,"zzz":null}})"
        "\n");
    Run r = TestRulesWith(
        {"--config", config, "--input", input, "--golden", golden}, "");
    INFO(r.out);
    CHECK(r.code == kExitFailure);
    CHECK(r.out.find(" c: missing from the golden file\n+  null") !=
          std::string::npos);
    CHECK(r.out.find(" zzz: in the golden file but not in the config") !=
          std::string::npos);
    CHECK(r.out.find("@@ series 2: input line 3, not in the golden file @@") !=
          std::string::npos);
    CHECK(r.out.find("FAIL: 2 of 2 series differ") != std::string::npos);

    dir.Write("golden.jsonl", written + written);
    Run extra = TestRulesWith(
        {"--config", config, "--input", input, "--golden", golden}, "");
    CHECK(extra.code == kExitFailure);
    CHECK(extra.out.find("@@ golden line 3: no such series in the input @@") !=
          std::string::npos);
    // Input out of step with the golden file.
    CHECK(extra.out.find("@@ series") == std::string::npos);
  }

  SECTION("the input changed under the golden file") {
    std::string other = dir.Write("other.txt",
                                  "up{job=\"keep-me\",x=\"1\"}\n"
                                  "up{job=\"other\"}\n");
    Run r = TestRulesWith(
        {"--config", config, "--input", other, "--golden", golden}, "");
    CHECK(r.code == kExitFailure);
    CHECK(r.out.find("out of step with the input file") != std::string::npos);
  }
}

TEST_CASE("test-rules usage", "[test-rules]") {
  Run help = TestRulesWith({"--help"}, "");
  CHECK(help.code == kExitOk);
  CHECK(help.out.find("Usage: promrelay test-rules") == 0);
  Run none = TestRulesWith({}, "");
  CHECK(none.code == kExitUsage);
  Run update = TestRulesWith({"--config", "x", "--update"}, "");
  CHECK(update.code == kExitUsage);
  CHECK(update.err.find("--update needs --golden") != std::string::npos);
  Run unknown = TestRulesWith({"--config", "x", "--out", "y"}, "");
  CHECK(unknown.code == kExitUsage);
  CHECK(unknown.err.find("unknown flag \"--out\"") != std::string::npos);
  Run twice = TestRulesWith({"--config", "x", "--config", "y"}, "");
  CHECK(twice.code == kExitUsage);
}

}  // namespace
}  // namespace promrelay::cli
