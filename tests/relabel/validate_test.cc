// relabel-semantics.md section 6: which rules are rejected, with which
// message (field first), and in which order the checks run.
#include "tests/relabel/helpers.h"

namespace promrelay::relabel::testing {
namespace {

constexpr NameScheme kUtf8 = NameScheme::kUtf8;
constexpr NameScheme kLegacy = NameScheme::kLegacy;
constexpr NameScheme kSchemes[] = {kUtf8, kLegacy};

TEST_CASE("validate 1: empty action", "[relabel][validate]") {
  for (NameScheme s : kSchemes) {
    CHECK(ErrorOf(R().action_null(), s) ==
          "action: relabel action cannot be empty");
    // Wins over every later check.
    CHECK(ErrorOf(R().action_null().mod(0).target(""), s) ==
          "action: relabel action cannot be empty");
  }
  // Omitted action is replace, not empty.
  CHECK(ErrorOf(R().target("t")) == "");
}

TEST_CASE("validate 2: hashmod needs a non-zero modulus",
          "[relabel][validate]") {
  const char* want =
      "modulus: relabel configuration for hashmod requires non-zero modulus";
  CHECK(ErrorOf(R().src({"a"}).target("t").action("hashmod")) == want);
  CHECK(ErrorOf(R().src({"a"}).target("t").action("hashmod").mod(0)) == want);
  // Checked before the missing target.
  CHECK(ErrorOf(R().src({"a"}).action("hashmod")) == want);
  CHECK(ErrorOf(R().src({"a"}).target("t").action("hashmod").mod(1)) == "");
  // Other actions do not care about modulus 0.
  CHECK(ErrorOf(R().src({"a"}).target("t").mod(0)) == "");
}

TEST_CASE("validate 3: target_label required", "[relabel][validate]") {
  for (const char* act : {"replace", "hashmod", "lowercase", "uppercase",
                          "keepequal", "dropequal"}) {
    INFO(act);
    std::string want = std::string("target_label: relabel configuration for ") +
                       act + " action requires 'target_label' value";
    auto rule =
        R().src({"a"}).action(act).mod(std::string(act) == "hashmod" ? 5 : 0);
    if (std::string(act) != "hashmod") rule.s.modulus.reset();
    CHECK(ErrorOf(rule) == want);
    CHECK(ErrorOf(R(rule).target("")) == want);
    CHECK(ErrorOf(R(rule).target(""), kLegacy) == want);
  }
  // The default action too.
  CHECK(ErrorOf(R().src({"a"})) ==
        "target_label: relabel configuration for replace action requires "
        "'target_label' value");
  // keep/drop/labelmap need none.
  CHECK(ErrorOf(R().src({"a"}).action("keep")) == "");
  CHECK(ErrorOf(R().src({"a"}).action("drop")) == "");
  CHECK(ErrorOf(R().action("labelmap")) == "");
}

TEST_CASE("validate 4: replace target names", "[relabel][validate]") {
  auto bad = [](const std::string& t) {
    return "target_label: \"" + t +
           "\" is invalid 'target_label' for replace action";
  };
  // Without `$`: a valid name under the scheme.
  CHECK(ErrorOf(R().target("a.b")) == "");
  CHECK(ErrorOf(R().target("a.b"), kLegacy) == bad("a.b"));
  CHECK(ErrorOf(R().target("0a")) == "");
  CHECK(ErrorOf(R().target("0a"), kLegacy) == bad("0a"));
  CHECK(ErrorOf(R().target("\xff")) ==
        "target_label: \"\\xff\" is invalid 'target_label' for replace action");
  // With `$`: UTF-8 needs only non-empty valid UTF-8; legacy the template
  // pattern.
  CHECK(ErrorOf(R().target("-$1")) == "");
  CHECK(ErrorOf(R().target("-$1"), kLegacy) == bad("-$1"));
  CHECK(ErrorOf(R().target("a_$1"), kLegacy) == "");
  CHECK(ErrorOf(R().target("${name}_x"), kLegacy) == "");
  CHECK(ErrorOf(R().target("$"), kLegacy) == bad("$"));
  CHECK(ErrorOf(R().target("$")) == "");
  CHECK(ErrorOf(R().target("x\xff$1")) ==
        "target_label: \"x\\xff$1\" is invalid 'target_label' for replace "
        "action");
}

TEST_CASE(
    "validate 5: literal targets of lowercase/uppercase/keepequal/dropequal",
    "[relabel][validate]") {
  for (const char* act : {"lowercase", "uppercase", "keepequal", "dropequal"}) {
    INFO(act);
    CHECK(ErrorOf(R().src({"a"}).target("a.b").action(act)) == "");
    CHECK(ErrorOf(R().src({"a"}).target("a.b").action(act), kLegacy) ==
          std::string("target_label: \"a.b\" is invalid 'target_label' for ") +
              act + " action");
    // `$` has no meaning here: under legacy it is simply invalid.
    CHECK(ErrorOf(R().src({"a"}).target("${1}").action(act)) == "");
    CHECK(ErrorOf(R().src({"a"}).target("${1}").action(act), kLegacy) ==
          std::string("target_label: \"${1}\" is invalid 'target_label' for ") +
              act + " action");
    CHECK(ErrorOf(R().src({"a"}).target("ok_name").action(act), kLegacy) == "");
  }
}

TEST_CASE("validate 6: replacement must stay $1", "[relabel][validate]") {
  for (const char* act : {"lowercase", "uppercase", "keepequal", "dropequal"}) {
    INFO(act);
    std::string want =
        std::string("replacement: 'replacement' can not be set for ") + act +
        " action";
    CHECK(ErrorOf(R().src({"a"}).target("t").action(act).repl("x")) == want);
    CHECK(ErrorOf(R().src({"a"}).target("t").action(act).repl("")) == want);
    CHECK(ErrorOf(R().src({"a"}).target("t").action(act).repl("${1}")) == want);
    CHECK(ErrorOf(R().src({"a"}).target("t").action(act).repl("$1")) == "");
    // Check 5 runs first.
    CHECK(ErrorOf(R().src({"a"}).target("a.b").action(act).repl("x"), kLegacy)
              .starts_with("target_label: "));
  }
}

TEST_CASE("validate 7: labelmap replacement", "[relabel][validate]") {
  auto bad = [](const std::string& r) {
    return "replacement: \"" + r +
           "\" is invalid 'replacement' for labelmap action";
  };
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl("")) == bad(""));
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl(""), kLegacy) ==
        bad(""));
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl("a-$1")) == "");
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl("a-$1"), kLegacy) ==
        bad("a-$1"));
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl("new_${1}"), kLegacy) ==
        "");
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl("fixed"), kLegacy) ==
        "");
  CHECK(ErrorOf(R().re("(.*)").action("labelmap"), kLegacy) ==
        "");  // default $1
  CHECK(ErrorOf(R().re("(.*)").action("labelmap").repl("\xff")) ==
        "replacement: \"\\xff\" is invalid 'replacement' for labelmap action");
}

TEST_CASE("validate 8: hashmod literal target", "[relabel][validate]") {
  CHECK(ErrorOf(R().src({"a"}).action("hashmod").mod(2).target("a.b")) == "");
  CHECK(
      ErrorOf(R().src({"a"}).action("hashmod").mod(2).target("a.b"), kLegacy) ==
      "target_label: \"a.b\" is invalid 'target_label' for hashmod action");
  CHECK(
      ErrorOf(R().src({"a"}).action("hashmod").mod(2).target("$1"), kLegacy) ==
      "target_label: \"$1\" is invalid 'target_label' for hashmod action");
  // hashmod may set other fields.
  CHECK(ErrorOf(R().src({"a"})
                    .action("hashmod")
                    .mod(2)
                    .target("h")
                    .sep(",")
                    .re("x")
                    .repl("y")) == "");
}

TEST_CASE(
    "validate 9: keepequal/dropequal take only source_labels and target_label",
    "[relabel][validate]") {
  for (const char* act : {"keepequal", "dropequal"}) {
    INFO(act);
    std::string why = std::string(act) +
                      " action requires only 'source_labels' and "
                      "`target_label`, and no other fields";
    auto base = R().src({"a"}).target("t").action(act);
    CHECK(ErrorOf(base) == "");
    CHECK(ErrorOf(R(base).re("x")) == "regex: " + why);
    CHECK(ErrorOf(R(base).re("")) ==
          "regex: " + why);  // also a YAML null regex
    CHECK(ErrorOf(R(base).mod(3)) == "modulus: " + why);
    CHECK(ErrorOf(R(base).sep(",")) == "separator: " + why);
    CHECK(ErrorOf(R(base).sep("")) == "separator: " + why);
    // promrelay compares by value: explicit defaults are accepted
    // (Prometheus rejects an explicit `regex: (.*)` by identity).
    CHECK(ErrorOf(R(base).re("(.*)")) == "");
    CHECK(ErrorOf(R(base).sep(";")) == "");
    CHECK(ErrorOf(R(base).mod(0)) == "");
    CHECK(ErrorOf(R(base).repl("$1")) == "");
    CHECK(ErrorOf(R(base).src({})) == "");
    // A replacement other than $1 is caught by check 6 first.
    CHECK(ErrorOf(R(base).repl("x"))
              .starts_with("replacement: 'replacement' can not be set"));
    // The first offending field in the order regex, modulus, separator.
    CHECK(ErrorOf(R(base).sep(",").mod(2).re("x")) == "regex: " + why);
    CHECK(ErrorOf(R(base).sep(",").mod(2)) == "modulus: " + why);
  }
}

TEST_CASE("validate 10: labeldrop/labelkeep take only regex",
          "[relabel][validate]") {
  for (const char* act : {"labeldrop", "labelkeep"}) {
    INFO(act);
    std::string why =
        std::string(act) + " action requires only 'regex', and no other fields";
    auto base = R().re("x").action(act);
    CHECK(ErrorOf(base) == "");
    CHECK(ErrorOf(R().action(act)) == "");  // default regex
    CHECK(ErrorOf(R(base).src({"a"})) == "source_labels: " + why);
    CHECK(ErrorOf(R(base).target("t")) == "target_label: " + why);
    CHECK(ErrorOf(R(base).mod(2)) == "modulus: " + why);
    CHECK(ErrorOf(R(base).sep(",")) == "separator: " + why);
    CHECK(ErrorOf(R(base).sep("")) == "separator: " + why);
    CHECK(ErrorOf(R(base).repl("x")) == "replacement: " + why);
    CHECK(ErrorOf(R(base).repl("")) == "replacement: " + why);
    // By value: explicit defaults are accepted (Prometheus rejects an
    // explicit `source_labels: []` by identity).
    CHECK(ErrorOf(R(base).src({})) == "");
    CHECK(ErrorOf(R(base).target("")) == "");
    CHECK(ErrorOf(R(base).mod(0)) == "");
    CHECK(ErrorOf(R(base).sep(";")) == "");
    CHECK(ErrorOf(R(base).repl("$1")) == "");
    // Order: source_labels, target_label, modulus, separator, replacement.
    CHECK(ErrorOf(R(base).repl("x").sep(",").mod(1).target("t").src({"a"})) ==
          "source_labels: " + why);
    CHECK(ErrorOf(R(base).repl("x").sep(",").mod(1).target("t")) ==
          "target_label: " + why);
    CHECK(ErrorOf(R(base).repl("x").sep(",").mod(1)) == "modulus: " + why);
    CHECK(ErrorOf(R(base).repl("x").sep(",")) == "separator: " + why);
  }
}

TEST_CASE("validate: parse-time errors come first", "[relabel][validate]") {
  // Invalid source label names.
  CHECK(ErrorOf(R().src({""}).target("t")) ==
        "source_labels: \"\" is not a valid label name");
  CHECK(ErrorOf(R().src({"a", "\xff"}).target("t")) ==
        "source_labels: \"\\xff\" is not a valid label name");
  CHECK(ErrorOf(R().src({"a.b"}).target("t")) == "");
  // Parsed with UTF-8 validation under either scheme, as Prometheus does.
  CHECK(ErrorOf(R().src({"a.b"}).target("t"), kLegacy) == "");
  CHECK(ErrorOf(R().src({""}).target("t"), kLegacy) ==
        "source_labels: \"\" is not a valid label name");
  // Before the empty-action check.
  CHECK(ErrorOf(R().src({""}).action_null()).starts_with("source_labels: "));
  CHECK(ErrorOf(R().action("nope").action_null()) ==
        "action: relabel action cannot be empty");
  CHECK(ErrorOf(R().action("nope").mod(0)) ==
        "action: unknown relabel action \"nope\"");
  // Unknown action before target checks.
  CHECK(ErrorOf(R().action("replce")) ==
        "action: unknown relabel action \"replce\"");
}

TEST_CASE("validate: every action accepts its minimal form",
          "[relabel][validate]") {
  for (NameScheme s : kSchemes) {
    CHECK(ErrorOf(R().src({"a"}).target("t"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).re("x").action("keep"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).re("x").action("drop"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).target("t").action("keepequal"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).target("t").action("dropequal"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).target("t").action("hashmod").mod(7), s) ==
          "");
    CHECK(ErrorOf(R().re("(.*)").action("labelmap"), s) == "");
    CHECK(ErrorOf(R().re("x").action("labeldrop"), s) == "");
    CHECK(ErrorOf(R().re("x").action("labelkeep"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).target("t").action("lowercase"), s) == "");
    CHECK(ErrorOf(R().src({"a"}).target("t").action("uppercase"), s) == "");
  }
}

TEST_CASE("Compile names the failing rule index", "[relabel][validate]") {
  std::vector<RuleSpec> specs = {R().target("ok"),
                                 R().src({"a"}).re("x").action("keep"),
                                 R().action("hashmod").target("h")};
  auto rs = RuleSet::Compile(specs, kUtf8);
  REQUIRE_FALSE(rs.ok());
  CHECK(std::string(rs.status().message()) ==
        "[2].modulus: relabel configuration for hashmod requires non-zero "
        "modulus");
  specs.pop_back();
  auto ok = RuleSet::Compile(specs, kUtf8);
  REQUIRE(ok.ok());
  CHECK(ok->size() == 2);
  CHECK_FALSE(ok->empty());
  RuleSet copy = *ok;  // shares the compiled rules
  CHECK(copy.size() == 2);
  LabelBuilder b;
  std::vector<Label> in = {{"a", "x"}};
  b.Reset(in);
  CHECK(copy.Apply(b));
  std::vector<Label> other = {{"a", "y"}};
  b.Reset(other);
  CHECK_FALSE(copy.Apply(b));  // rule [1] keeps only a="x"
  CHECK(RuleSet().empty());
}

}  // namespace
}  // namespace promrelay::relabel::testing
