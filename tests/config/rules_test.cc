// Relabel rules in YAML: Prometheus's presence semantics (omitted vs "" vs
// null), and the invalid rules of relabel-semantics.md section 6, each
// reported at its key's line with the field path.
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "tests/config/test_util.h"

namespace promrelay::config {
namespace {

using testing::Load;
using testing::Loaded;

using Labels = std::vector<std::pair<std::string, std::string>>;

// Loads `rules` (YAML list items indented by two spaces) as the global
// relabel_configs.
Loaded LoadRules(const std::string& rules) {
  return Load("relabel_configs:\n" + rules +
              "remote_write:\n  - name: vm\n    url: http://vm/api/v1/write\n");
}

// Applies the global rules; nullopt when the series is dropped.
std::optional<Labels> Apply(const Config& c, const Labels& in) {
  std::vector<relabel::Label> views;
  for (const auto& [n, v] : in) views.push_back({n, v});
  relabel::LabelBuilder b;
  b.Reset(views);
  if (!c.relabel_configs.Apply(b)) return std::nullopt;
  Labels out;
  for (const relabel::Label& l : b.Result()) {
    out.emplace_back(std::string(l.name), std::string(l.value));
  }
  return out;
}

std::optional<Labels> Run(const std::string& rules, const Labels& in) {
  Loaded l = LoadRules(rules);
  INFO(rules << "\n" << l.Dump());
  REQUIRE(l.ok());
  return Apply(*l.config, in);
}

const Labels kA = {{"__name__", "up"}, {"a", "x"}};
const Labels kNoA = {{"__name__", "up"}};

TEST_CASE("regex omitted is (.*); \"\", ~ and bare regex: are the empty regex",
          "[rules]") {
  // Omitted: matches anything, so keep keeps both.
  CHECK(Run("  - {source_labels: [a], action: keep}\n", kA).has_value());
  CHECK(Run("  - {source_labels: [a], action: keep}\n", kNoA).has_value());
  for (const char* form :
       {"regex: \"\"", "regex: ''", "regex: ~", "regex: null", "regex:"}) {
    std::string rules = std::string("  - source_labels: [a]\n    ") + form +
                        "\n    action: keep\n";
    INFO(form);
    // The empty regex matches only "": a="x" is dropped, absent a kept.
    CHECK_FALSE(Run(rules, kA).has_value());
    CHECK(Run(rules, kNoA).has_value());
  }
  // A quoted "~" is a string, not null: the regex `~`.
  std::string tilde =
      "  - source_labels: [a]\n    regex: \"~\"\n"
      "    action: keep\n";
  CHECK_FALSE(Run(tilde, kA).has_value());
  CHECK(Run(tilde, {{"__name__", "up"}, {"a", "~"}}).has_value());
}

TEST_CASE("separator and replacement: omitted, \"\" and null", "[rules]") {
  const Labels in = {{"__name__", "up"}, {"a", "x"}, {"b", "y"}};
  auto value_of = [](const std::optional<Labels>& l, const std::string& name) {
    REQUIRE(l.has_value());
    for (const auto& [n, v] : *l) {
      if (n == name) return v;
    }
    return std::string("<absent>");
  };
  CHECK(value_of(Run("  - {source_labels: [a, b], target_label: c}\n", in),
                 "c") == "x;y");
  CHECK(value_of(Run("  - {source_labels: [a, b], target_label: c, "
                     "separator: \"\"}\n",
                     in),
                 "c") == "xy");
  CHECK(value_of(Run("  - source_labels: [a, b]\n    target_label: c\n"
                     "    separator:\n",
                     in),
                 "c") == "xy");
  CHECK(value_of(Run("  - {source_labels: [a], target_label: b}\n", in), "b") ==
        "x");
  // An explicit empty replacement deletes the target; so does null.
  CHECK(value_of(Run("  - {source_labels: [a], target_label: b, "
                     "replacement: \"\"}\n",
                     in),
                 "b") == "<absent>");
  CHECK(value_of(Run("  - source_labels: [a]\n    target_label: b\n"
                     "    replacement: ~\n",
                     in),
                 "b") == "<absent>");
}

TEST_CASE("action: case-insensitive; null and \"\" rejected", "[rules]") {
  CHECK_FALSE(Run("  - {source_labels: [a], regex: x, action: DROP}\n", kA)
                  .has_value());
  CHECK(Run("  - {source_labels: [a], regex: x, action: Drop}\n", kNoA)
            .has_value());

  Loaded null_action = LoadRules("  - source_labels: [a]\n    action:\n");
  INFO(null_action.Dump());
  CHECK(null_action.Has(3, "relabel_configs[0].action",
                        "relabel action cannot be empty"));
  Loaded tilde = LoadRules("  - {source_labels: [a], action: ~}\n");
  CHECK(tilde.Has(2, "relabel_configs[0].action",
                  "relabel action cannot be empty"));
  Loaded empty = LoadRules("  - {source_labels: [a], action: \"\"}\n");
  CHECK(
      empty.Has(2, "relabel_configs[0].action", "unknown relabel action \"\""));
  Loaded foo = LoadRules("  - {source_labels: [a], action: foo}\n");
  CHECK(foo.Has(2, "relabel_configs[0].action",
                "unknown relabel action \"foo\""));
}

TEST_CASE("rule parse errors: list shape, keys, source_labels, modulus",
          "[rules]") {
  Loaded l = Load(R"(relabel_configs:
  - source_labels: [a]
    action: keep
  -
  - "not a rule"
  - {source_labels: [a, "", 5], target_label: t}
  - {source_labels: a, target_label: t}
  - {regx: a, action: drop}
  - {action: hashmod, target_label: t, modulus: -1}
  - {action: hashmod, target_label: t, modulus: 1.5}
  - {action: hashmod, target_label: t, modulus: many}
remote_write:
  - name: vm
    url: http://vm/x
    write_relabel_configs: {action: drop}
)");
  INFO(l.Dump());
  CHECK(l.Has(4, "relabel_configs[1]", "empty relabel rule"));
  CHECK(l.Has(5, "relabel_configs[2]", "must be a mapping"));
  CHECK(l.Has(6, "relabel_configs[3].source_labels[1]",
              "\"\" is not a valid label name"));
  CHECK(l.Has(7, "relabel_configs[4].source_labels", "expected a list"));
  CHECK(l.Has(8, "relabel_configs[5]",
              "unknown key \"regx\" (did you mean \"regex\"?)"));
  CHECK(l.Has(9, "relabel_configs[6].modulus", "not a non-negative integer"));
  CHECK(l.Has(10, "relabel_configs[7].modulus", "not a non-negative integer"));
  CHECK(l.Has(11, "relabel_configs[8].modulus", "not a non-negative integer"));
  CHECK(l.Has(15, "remote_write[0].write_relabel_configs",
              "expected a list of relabel rules"));
  CHECK(l.errors.size() == 9);
  // A number as source label is a valid name under UTF-8 ("5"); the column
  // of the bad entry is its own.
  for (const auto& e : l.errors) {
    if (e.field == "relabel_configs[3].source_labels[1]") CHECK(e.column == 25);
  }
}

TEST_CASE("regex compile errors point at the regex line", "[rules]") {
  Loaded l = Load(R"(remote_write:
  - name: vm
    url: http://vm/x
    write_relabel_configs:
      - source_labels: [job]
        action: keep
      - source_labels: [job]
        regex: (a
        action: drop
)");
  INFO(l.Dump());
  REQUIRE(l.errors.size() == 1);
  CHECK(l.errors[0].line == 8);
  CHECK(l.errors[0].column == 16);
  CHECK(l.errors[0].field == "remote_write[0].write_relabel_configs[1].regex");
  CHECK(l.errors[0].message.find("error parsing regexp") != std::string::npos);
}

TEST_CASE("legacy scheme applies to rules", "[rules]") {
  Loaded l = Load(R"(global:
  metric_name_validation_scheme: legacy
relabel_configs:
  - {source_labels: [a.b], target_label: c}
  - {source_labels: [a], target_label: c.d}
remote_write:
  - name: vm
    url: http://vm/x
)");
  INFO(l.Dump());
  CHECK(l.Has(4, "relabel_configs[0].source_labels[0]", "legacy"));
  CHECK(l.Has(5, "relabel_configs[1].target_label", "invalid 'target_label'"));
  Loaded utf8 = Load(R"(relabel_configs:
  - {source_labels: [a.b], target_label: c}
  - {source_labels: [a], target_label: c.d}
remote_write:
  - name: vm
    url: http://vm/x
)");
  INFO(utf8.Dump());
  CHECK(utf8.ok());
}

}  // namespace
}  // namespace promrelay::config
