// `promrelay check-config`: every invalid relabel rule form of
// relabel-semantics.md section 6 is rejected with its line and field, the
// valid forms are accepted, and the summary and usage behave.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/cli/cli.h"
#include "tests/config/test_util.h"

namespace promrelay::cli {
namespace {

using config::testing::ScopedEnv;
using config::testing::TempDir;

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run CheckConfigText(const TempDir& dir, const std::string& yaml,
                    std::vector<std::string> extra = {}) {
  std::string path = dir.Write("promrelay.yaml", yaml);
  std::vector<std::string> args = {"--config", path};
  args.insert(args.end(), extra.begin(), extra.end());
  std::ostringstream out, err;
  Run r;
  r.code = CheckConfig(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string RuleConfig(const std::string& rule, bool legacy) {
  std::string yaml;
  if (legacy) yaml += "global: {metric_name_validation_scheme: legacy}\n";
  yaml += "relabel_configs:\n  - " + rule +
          "\nremote_write:\n  - name: vm\n    url: http://vm/api/v1/write\n";
  return yaml;
}

struct Invalid {
  const char* rule;  // one flow-style mapping, on one line
  bool legacy;
  const char* field;  // after "relabel_configs[0]"
  const char* message;
};

// relabel-semantics.md section 6, check by check, then the parse-time errors.
const Invalid kInvalid[] = {
    // 1. empty action
    {"{source_labels: [a], action: ~}", false, ".action",
     "relabel action cannot be empty"},
    {"{source_labels: [a], action: null, target_label: t}", false, ".action",
     "relabel action cannot be empty"},
    // 2. hashmod without modulus
    {"{source_labels: [a], target_label: t, action: hashmod}", false,
     ".modulus", "requires non-zero modulus"},
    {"{source_labels: [a], target_label: t, action: hashmod, modulus: 0}",
     false, ".modulus", "requires non-zero modulus"},
    {"{source_labels: [a], target_label: t, action: hashmod, modulus: ~}",
     false, ".modulus", "requires non-zero modulus"},
    // 3. target_label required
    {"{source_labels: [a]}", false, ".target_label",
     "replace action requires 'target_label'"},
    {"{source_labels: [a], target_label: \"\"}", false, ".target_label",
     "requires 'target_label'"},
    {"{source_labels: [a], target_label: ~}", false, ".target_label",
     "requires 'target_label'"},
    {"{source_labels: [a], action: hashmod, modulus: 8}", false,
     ".target_label", "hashmod action requires 'target_label'"},
    {"{source_labels: [a], action: lowercase}", false, ".target_label",
     "lowercase action requires 'target_label'"},
    {"{source_labels: [a], action: uppercase}", false, ".target_label",
     "uppercase action requires 'target_label'"},
    {"{source_labels: [a], action: keepequal}", false, ".target_label",
     "keepequal action requires 'target_label'"},
    {"{source_labels: [a], action: dropequal}", false, ".target_label",
     "dropequal action requires 'target_label'"},
    // 4. replace target_label validity (legacy scheme)
    {"{source_labels: [a], target_label: a-b}", true, ".target_label",
     "invalid 'target_label' for replace action"},
    {"{source_labels: [a], target_label: \"${1}-x\"}", true, ".target_label",
     "invalid 'target_label' for replace action"},
    {"{source_labels: [a], target_label: \"1abc\"}", true, ".target_label",
     "invalid 'target_label'"},
    // 5. literal target for lowercase/uppercase/keepequal/dropequal
    {"{source_labels: [a], action: lowercase, target_label: a.b}", true,
     ".target_label", "invalid 'target_label' for lowercase action"},
    {"{source_labels: [a], action: keepequal, target_label: \"${1}\"}", true,
     ".target_label", "invalid 'target_label' for keepequal action"},
    // 6. replacement must stay $1
    {"{source_labels: [a], action: lowercase, target_label: t, replacement: "
     "x}",
     false, ".replacement", "'replacement' can not be set for lowercase"},
    {"{source_labels: [a], action: uppercase, target_label: t, replacement: "
     "\"\"}",
     false, ".replacement", "'replacement' can not be set for uppercase"},
    {"{source_labels: [a], action: keepequal, target_label: t, replacement: "
     "x}",
     false, ".replacement", "'replacement' can not be set for keepequal"},
    {"{source_labels: [a], action: dropequal, target_label: t, replacement: "
     "~}",
     false, ".replacement", "'replacement' can not be set for dropequal"},
    // 7. labelmap replacement
    {"{action: labelmap, regex: \"(.*)\", replacement: \"\"}", false,
     ".replacement", "invalid 'replacement' for labelmap"},
    {"{action: labelmap, regex: \"(.*)\", replacement: \"a-$1\"}", true,
     ".replacement", "invalid 'replacement' for labelmap"},
    // 8. hashmod literal target
    {"{source_labels: [a], action: hashmod, modulus: 4, target_label: a.b}",
     true, ".target_label", "invalid 'target_label' for hashmod"},
    // 9. keepequal/dropequal take only source_labels and target_label
    {"{source_labels: [a], action: keepequal, target_label: t, regex: x}",
     false, ".regex", "keepequal action requires only 'source_labels'"},
    {"{source_labels: [a], action: dropequal, target_label: t, regex: \"\"}",
     false, ".regex", "dropequal action requires only 'source_labels'"},
    {"{source_labels: [a], action: keepequal, target_label: t, modulus: 3}",
     false, ".modulus", "requires only 'source_labels'"},
    {"{source_labels: [a], action: dropequal, target_label: t, separator: "
     "\",\"}",
     false, ".separator", "requires only 'source_labels'"},
    // 10. labeldrop/labelkeep take only regex
    {"{action: labeldrop, regex: x, source_labels: [a]}", false,
     ".source_labels", "labeldrop action requires only 'regex'"},
    {"{action: labelkeep, regex: x, target_label: t}", false, ".target_label",
     "labelkeep action requires only 'regex'"},
    {"{action: labeldrop, regex: x, modulus: 2}", false, ".modulus",
     "requires only 'regex'"},
    {"{action: labelkeep, regex: x, separator: \"\"}", false, ".separator",
     "requires only 'regex'"},
    {"{action: labeldrop, regex: x, replacement: y}", false, ".replacement",
     "requires only 'regex'"},
    // Parse-time errors.
    {"{source_labels: [a], regex: \"(a\", action: keep}", false, ".regex",
     "error parsing regexp"},
    {"{source_labels: [a], regex: \"a**\", action: keep}", false, ".regex",
     "error parsing regexp"},
    {"{source_labels: [a], action: foo}", false, ".action",
     "unknown relabel action \"foo\""},
    {"{source_labels: [a], action: \"\"}", false, ".action",
     "unknown relabel action \"\""},
    {"{source_labels: [\"\", a], target_label: t}", false, ".source_labels[0]",
     "is not a valid label name"},
    {"{source_labels: [a.b], target_label: t}", true, ".source_labels[0]",
     "is not a valid label name"},
    {"{source_labels: [a], target_label: t, action: hashmod, modulus: -1}",
     false, ".modulus", "not a non-negative integer"},
    {"{source_labels: [a], target_label: t, action: hashmod, modulus: 2.5}",
     false, ".modulus", "not a non-negative integer"},
    {"{source_labels: [a], target_label: t, regexp: x}", false, "",
     "unknown key \"regexp\" (did you mean \"regex\"?)"},
    {"{source_labels: a, target_label: t}", false, ".source_labels",
     "expected a list"},
};

TEST_CASE("check-config rejects every invalid rule form, naming the field",
          "[check-config]") {
  TempDir dir;
  for (const Invalid& c : kInvalid) {
    Run r = CheckConfigText(dir, RuleConfig(c.rule, c.legacy));
    INFO(c.rule << (c.legacy ? " (legacy)" : "") << "\nstderr: " << r.err
                << "stdout: " << r.out);
    CHECK(r.code == kExitFailure);
    // FILE:LINE:COL: relabel_configs[0]<field>: <message>
    int line = c.legacy ? 3 : 2;
    std::string prefix =
        dir.path() + "/promrelay.yaml:" + std::to_string(line) + ":";
    std::string field = std::string(": relabel_configs[0]") + c.field + ": ";
    bool found = false;
    std::istringstream lines(r.err);
    for (std::string l; std::getline(lines, l);) {
      if (l.rfind(prefix, 0) == 0 && l.find(field) != std::string::npos &&
          l.find(c.message) != std::string::npos) {
        found = true;
      }
    }
    CHECK(found);
    CHECK(r.err.find("1 error\n") != std::string::npos);
    CHECK(r.out.empty());
  }
}

TEST_CASE("a bare - in a relabel list is rejected at its line",
          "[check-config]") {
  TempDir dir;
  Run r = CheckConfigText(dir, R"(remote_write:
  - name: vm
    url: http://vm/api/v1/write
    write_relabel_configs:
      - {source_labels: [a], regex: x, action: drop}
      -
)");
  INFO(r.err);
  CHECK(r.code == kExitFailure);
  CHECK(
      r.err.find("promrelay.yaml:6:7: remote_write[0].write_relabel_configs[1]"
                 ": empty relabel rule") != std::string::npos);
}

TEST_CASE("check-config accepts the valid rule forms", "[check-config]") {
  TempDir dir;
  struct Valid {
    const char* rule;
    bool legacy;
  };
  const Valid kValid[] = {
      {"{source_labels: [a], target_label: b}", false},
      {"{target_label: env, replacement: prod}", false},
      {"{source_labels: [a, b], separator: \"\", target_label: c}", false},
      {"{source_labels: [a], regex: \"\", action: keep}", false},
      {"{source_labels: [a], regex: ~, action: drop}", false},
      {"{source_labels: [a], regex: x, action: DROP}", false},
      {"{source_labels: [a], regex: x, action: Keep}", false},
      {"{source_labels: [a], action: hashmod, target_label: b, modulus: 8}",
       false},
      {"{action: labelmap, regex: \"k8s_(.+)\", replacement: \"${1}\"}", false},
      {"{action: labelmap, regex: \"k8s_(.+)\", replacement: \"x_$1\"}", true},
      {"{action: labelkeep, regex: \"__name__|job\"}", false},
      {"{action: labeldrop, regex: \"project_id|service_id\"}", false},
      {"{source_labels: [a], action: lowercase, target_label: b}", false},
      {"{source_labels: [a], action: uppercase, target_label: b}", false},
      {"{source_labels: [a], action: keepequal, target_label: b}", false},
      {"{source_labels: [a], action: dropequal, target_label: b}", false},
      {"{source_labels: [a], target_label: \"${1}\", regex: \"(.*)\"}", false},
      {"{source_labels: [a], target_label: \"x_${1}\"}", true},
      {"{source_labels: [a], target_label: \"$1x\"}", true},
      {"{source_labels: [\"my.label\"], target_label: \"utf8.target\"}", false},
      {"{source_labels: [a], regex: \"(?<name>x)\", target_label: b, "
       "replacement: \"${name}\"}",
       false},
      {"{source_labels: [a], regex: \"(?P<name>x)\", target_label: b, "
       "replacement: \"$name\"}",
       false},
      {"{source_labels: [a], regex: \"^metrics$\", action: keep}", false},
      // promrelay compares with the defaults by value (documented).
      {"{source_labels: [a], action: keepequal, target_label: b, regex: "
       "\"(.*)\"}",
       false},
      {"{action: labeldrop, regex: x, source_labels: []}", false},
      {"{source_labels: [a], action: dropequal, target_label: b, separator: "
       "\";\", replacement: \"$1\", modulus: 0}",
       false},
      {"{source_labels: [a], action: lowercase, target_label: b, replacement: "
       "\"$1\"}",
       false},
      {"{source_labels: [a, a], target_label: b}", false},
      {"{source_labels: [a], target_label: t, action: hashmod, modulus: "
       "18446744073709551615}",
       false},
  };
  for (const Valid& v : kValid) {
    Run r = CheckConfigText(dir, RuleConfig(v.rule, v.legacy));
    INFO(v.rule << "\n" << r.err);
    CHECK(r.code == kExitOk);
    CHECK(r.out.find("config OK") == 0);
    CHECK(r.out.find("relabel_configs: 1 rule\n") != std::string::npos);
  }
}

TEST_CASE("check-config collects every error of a file", "[check-config]") {
  TempDir dir;
  Run r = CheckConfigText(dir, R"(relabel_configs:
  - {source_labels: [a], action: foo}
  - {source_labels: [a]}
remote_write:
  - name: vm
    url: ftp://vm
    write_relabel_configs:
      - {regex: "(", action: labeldrop}
    queue_config: {shards: 0}
  - name: vm
    url: http://vm2/x
)");
  INFO(r.err);
  CHECK(r.code == kExitFailure);
  for (const char* want :
       {":2:34: relabel_configs[0].action: unknown relabel action",
        ":3:5: relabel_configs[1].target_label: ",
        ":6:10: remote_write[0].url: must start with http:// or https://",
        ":8:17: remote_write[0].write_relabel_configs[0].regex: error parsing "
        "regexp",
        ":9:28: remote_write[0].queue_config.shards: must be between 1",
        ":10:11: remote_write[1].name: duplicate destination name"}) {
    INFO(want);
    CHECK(r.err.find(want) != std::string::npos);
  }
  CHECK(r.err.find("6 errors\n") != std::string::npos);
}

TEST_CASE("check-config summary, --syntax-only and secret handling",
          "[check-config]") {
  TempDir dir;
  dir.Write("token", "hunter2-secret\n");
  std::string yaml = R"(remote_write:
  - name: gc
    url: https://gc.example/api/prom/push?token=querysecret
    basic_auth: {username: me, password_file: token}
    write_relabel_configs:
      - {source_labels: [job], regex: a|b, action: keep}
      - {regex: project_id, action: labeldrop}
    forbidden_labels: [project_id]
    storage: {path: q/gc, max_bytes: 2GiB, on_full: drop_oldest, fsync: never}
  - name: vm
    url: http://vm/api/v1/write
    bearer_token: inline-secret
    queue_config: {shards: 2, shard_by: []}
)";
  Run r = CheckConfigText(dir, yaml);
  INFO(r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(r.out.find("remote_write: 2 destinations") != std::string::npos);
  CHECK(r.out.find("gc: https://gc.example/api/prom/push?…") !=
        std::string::npos);
  CHECK(r.out.find("write_relabel_configs: 2 rules, forbidden_labels: 1, "
                   "auth: basic_auth") != std::string::npos);
  CHECK(r.out.find("queue: disk " + dir.path() +
                   "/q/gc (max 2GiB, on_full drop_oldest, fsync never)") !=
        std::string::npos);
  CHECK(r.out.find("auth: bearer_token") != std::string::npos);
  CHECK(r.out.find("fsync never), 4 shards by job, instance, __name__\n") !=
        std::string::npos);
  CHECK(r.out.find("queue: memory (max 256MiB), 2 shards by every label\n") !=
        std::string::npos);
  for (const char* secret : {"hunter2", "querysecret", "inline-secret"}) {
    CHECK(r.out.find(secret) == std::string::npos);
  }

  std::string missing = R"(remote_write:
  - name: gc
    url: https://gc.example/api/prom/push
    basic_auth: {username: me, password_file: /nonexistent/token}
)";
  Run full = CheckConfigText(dir, missing);
  CHECK(full.code == kExitFailure);
  CHECK(full.err.find(":4:47: remote_write[0].basic_auth.password_file: "
                      "cannot read \"/nonexistent/token\"") !=
        std::string::npos);
  Run syntax = CheckConfigText(dir, missing, {"--syntax-only"});
  CHECK(syntax.code == kExitOk);
  CHECK(syntax.out.find("syntax only") != std::string::npos);
}

TEST_CASE("check-config usage", "[check-config]") {
  std::ostringstream out, err;
  CHECK(CheckConfig({"--help"}, out, err) == kExitOk);
  CHECK(out.str().find("Usage: promrelay check-config") == 0);
  std::ostringstream out2, err2;
  CHECK(CheckConfig({}, out2, err2) == kExitUsage);
  CHECK(err2.str().find("--config FILE is required") != std::string::npos);
  std::ostringstream out3, err3;
  CHECK(CheckConfig({"--config", "x.yaml", "--strict"}, out3, err3) ==
        kExitUsage);
  CHECK(err3.str().find("unknown flag \"--strict\"") != std::string::npos);
  CHECK(err3.str().find("promrelay check-config --help") != std::string::npos);
  std::ostringstream out4, err4;
  CHECK(CheckConfig({"--config"}, out4, err4) == kExitUsage);
  std::ostringstream out5, err5;
  CHECK(CheckConfig({"--config=/nonexistent/p.yaml"}, out5, err5) ==
        kExitFailure);
  CHECK(err5.str().find("cannot read config file") != std::string::npos);
  std::ostringstream out6, err6;
  CHECK(CheckConfig({"--config", "a", "stray"}, out6, err6) == kExitUsage);
}

TEST_CASE("the shipped example configs are valid", "[check-config]") {
  const char* src = std::getenv("PROMRELAY_SOURCE_DIR");
  std::string root = src ? src : ".";
  ScopedEnv a("GRAFANA_CLOUD_INSTANCE_ID", "123456");
  ScopedEnv b("GRAFANA_CLOUD_TOKEN", "t");
  ScopedEnv c("MIMIR_TENANT", "tenant");
  ScopedEnv d("CLUSTER_A_TOKEN", "t");
  ScopedEnv e("REMOTE_USER", "u");
  std::vector<std::string> files = {root + "/config/starform.yaml"};
  for (const auto& entry :
       std::filesystem::directory_iterator(root + "/config/examples")) {
    if (entry.path().extension() == ".yaml") {
      files.push_back(entry.path().string());
    }
  }
  CHECK(files.size() >= 5);
  for (const std::string& f : files) {
    std::ostringstream out, err;
    int code = CheckConfig({"--syntax-only", "--config", f}, out, err);
    INFO(f << "\n" << err.str());
    CHECK(code == kExitOk);
  }
}

}  // namespace
}  // namespace promrelay::cli
