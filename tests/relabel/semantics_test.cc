// One test (or more) per bullet of relabel-semantics.md sections 1-5 and 7,
// plus the post-processing rules (empty values, sorting, empty set).
#include "tests/relabel/helpers.h"

namespace promrelay::relabel::testing {
namespace {

constexpr NameScheme kUtf8 = NameScheme::kUtf8;
constexpr NameScheme kLegacy = NameScheme::kLegacy;

// --- 1. Processing model -------------------------------------------------

TEST_CASE("missing label reads as empty; writing empty deletes",
          "[relabel][model]") {
  // Copying an absent label with the default $1 gives "" and deletes b.
  CHECK(Run({R().src({"missing"}).target("b")}, {{"a", "1"}, {"b", "2"}}) ==
        LabelMap{{"a", "1"}});
  // An input label with value "" is the same as an absent one.
  CHECK(Run({R().src({"a"}).re("").target("was_empty").repl("yes")},
            {{"a", ""}, {"b", "2"}}) ==
        LabelMap{{"b", "2"}, {"was_empty", "yes"}});
  CHECK(Run({R().src({"b"}).target("a").repl("")}, {{"a", "1"}, {"b", "2"}}) ==
        LabelMap{{"b", "2"}});
}

TEST_CASE("rules see earlier results, including delete then set",
          "[relabel][model]") {
  auto out = Run(
      {R().re("a").action("labeldrop"),
       R().src({"a"}).target("copy_after_drop"),  // a reads "" now
       R().target("a").repl("again"), R().src({"a"}).target("copy_after_set")},
      {{"a", "1"}, {"b", "2"}});
  CHECK(out ==
        LabelMap{{"a", "again"}, {"b", "2"}, {"copy_after_set", "again"}});
}

TEST_CASE("a drop stops processing", "[relabel][model]") {
  for (const char* act : {"drop", "keep", "dropequal", "keepequal"}) {
    INFO(act);
    RuleSpec first;
    std::string a = act;
    if (a == "drop") first = R().src({"a"}).re("1").action(a);
    if (a == "keep") first = R().src({"a"}).re("2").action(a);
    if (a == "dropequal") first = R().src({"a"}).target("c").action(a);
    if (a == "keepequal") first = R().src({"a"}).target("b").action(a);
    CHECK_FALSE(Run({first, R().target("later").repl("ran")},
                    {{"a", "1"}, {"b", "2"}, {"c", "1"}}));
  }
}

TEST_CASE("source value: order, separator, missing as empty, repeats",
          "[relabel][model]") {
  LabelMap in{{"a", "x"}, {"b", "y"}};
  CHECK(Run({R().src({"b", "a"}).target("t")}, in)->at("t") == "y;x");
  CHECK(
      Run({R().src({"a", "missing", "b"}).sep("-").target("t")}, in)->at("t") ==
      "x--y");
  CHECK(Run({R().src({"a", "a", "b", "a"}).sep("").target("t")}, in)->at("t") ==
        "xxyx");
  CHECK(Run({R().src({"missing", "missing"}).target("t")}, in)->at("t") == ";");
  // No source labels: the value is "" (matches the default regex).
  CHECK(Run({R().target("t").repl("fixed")}, in)->at("t") == "fixed");
  CHECK(Run({R().re("").target("t").repl("empty-matched")}, in)->at("t") ==
        "empty-matched");
  // A multi-character separator.
  CHECK(Run({R().src({"a", "b"}).sep("::").target("t")}, in)->at("t") ==
        "x::y");
}

// --- 2. Fields and defaults ------------------------------------------------

TEST_CASE("defaults: separator, regex, replacement, action",
          "[relabel][defaults]") {
  LabelMap in{{"a", "x"}, {"b", "y"}};
  // Default action replace, regex (.*), replacement $1, separator ";".
  CHECK(Run({R().src({"a", "b"}).target("t")}, in) ==
        LabelMap{{"a", "x"}, {"b", "y"}, {"t", "x;y"}});
  // Explicit empty separator is not the default.
  CHECK(Run({R().src({"a", "b"}).sep("").target("t")}, in)->at("t") == "xy");
  // Explicit empty replacement deletes the target.
  CHECK(Run({R().src({"a"}).target("b").repl("")}, in) == LabelMap{{"a", "x"}});
  // Explicit empty regex (also what a YAML null regex becomes) matches only "".
  CHECK(Run({R().src({"a"}).re("").target("t").repl("m")}, in) == in);
  CHECK(Run({R().src({"missing"}).re("").target("t").repl("m")}, in)->at("t") ==
        "m");
}

TEST_CASE("empty regex with keep and drop", "[relabel][defaults]") {
  LabelMap with{{"a", "x"}};
  LabelMap without{{"b", "y"}};
  CHECK_FALSE(Run({R().src({"a"}).re("").action("keep")}, with));
  CHECK(Run({R().src({"a"}).re("").action("keep")}, without) == without);
  CHECK(Run({R().src({"a"}).re("").action("drop")}, with) == with);
  CHECK_FALSE(Run({R().src({"a"}).re("").action("drop")}, without));
}

TEST_CASE("action names are case-insensitive", "[relabel][defaults]") {
  LabelMap in{{"a", "x"}, {"b", "x"}};
  CHECK_FALSE(Run({R().src({"a"}).re("x").action("DROP")}, in));
  CHECK_FALSE(Run({R().src({"a"}).re("x").action("Drop")}, in));
  CHECK(Run({R().src({"a"}).target("b").action("KeepEqual")}, in) == in);
  CHECK(Run({R().src({"a"}).target("u").action("UpperCase")}, in)->at("u") ==
        "X");
  CHECK(Run({R().src({"a"}).target("t").action("REPLACE")}, in)->at("t") ==
        "x");
  CHECK(ErrorOf(R().re("b").action("LabelDrop")) == "");
  // Go lower-cases with Unicode rules: KELVIN SIGN (U+212A) becomes 'k'.
  CHECK(ErrorOf(R().src({"a"}).re("x").action("\xE2\x84\xAA"
                                              "eep")) == "");
}

TEST_CASE("action null, empty and unknown", "[relabel][defaults]") {
  CHECK(ErrorOf(R().action_null().target("t")) ==
        "action: relabel action cannot be empty");
  CHECK(ErrorOf(R().action("").target("t")) ==
        "action: unknown relabel action \"\"");
  CHECK(ErrorOf(R().action("foo")) == "action: unknown relabel action \"foo\"");
  CHECK(ErrorOf(R().action("Foo\n")) ==
        "action: unknown relabel action \"Foo\\n\"");
}

// --- 3. Regex ----------------------------------------------------------------

TEST_CASE("regex is anchored at both ends", "[relabel][regex]") {
  LabelMap in{{"a", "foo"}};
  CHECK(Run({R().src({"a"}).re("o").action("keep")}, in) == std::nullopt);
  CHECK(Run({R().src({"a"}).re("fo").action("keep")}, in) == std::nullopt);
  CHECK(Run({R().src({"a"}).re("oo").action("keep")}, in) == std::nullopt);
  CHECK(Run({R().src({"a"}).re(".*o.*").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("f|o").action("keep")}, in) == std::nullopt);
  CHECK(Run({R().src({"a"}).re("foo|o").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("o|foo").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("f.*|x").action("keep")}, in) == in);
}

TEST_CASE("regex: dot matches newline", "[relabel][regex]") {
  LabelMap in{{"a", "l1\nl2"}};
  CHECK(Run({R().src({"a"}).re("l1.l2").action("keep")}, in) == in);
  CHECK(
      Run({R().src({"a"}).re("(.*)").target("t").repl("${1}!")}, in)->at("t") ==
      "l1\nl2!");
  CHECK(Run({R().src({"a"}).re(".+").action("keep")}, in) == in);
}

TEST_CASE("regex: ^ and $ inside the pattern are harmless",
          "[relabel][regex]") {
  LabelMap in{{"a", "metrics"}, {"b", "x,path:/p"}, {"c", "path:/q"}};
  CHECK(Run({R().src({"a"}).re("^metrics$").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("^metrics").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("metrics$").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("^x|^metrics$").action("keep")}, in) == in);
  auto out = Run({R().src({"b"}).re("(?:.+,|^)path:(.*)").target("pb"),
                  R().src({"c"}).re("(?:.+,|^)path:(.*)").target("pc")},
                 in);
  CHECK(out->at("pb") == "/p");
  CHECK(out->at("pc") == "/q");
  // A `^` in the middle can never match in a non-empty position.
  CHECK_FALSE(Run({R().src({"a"}).re("met^rics").action("keep")}, in));
}

TEST_CASE("regex: named groups in both syntaxes", "[relabel][regex]") {
  LabelMap in{{"a", "k=v"}};
  CHECK(Run({R().src({"a"})
                 .re("(?P<key>[^=]+)=(?P<val>.*)")
                 .target("${key}")
                 .repl("$val")},
            in)
            ->at("k") == "v");
  CHECK(Run({R().src({"a"})
                 .re("(?<key>[^=]+)=(?<val>.*)")
                 .target("${key}")
                 .repl("$val")},
            in)
            ->at("k") == "v");
  // `(?<` inside a character class or after an escape is not a group.
  LabelMap paren{{"a", "(?<x>"}};
  CHECK(Run({R().src({"a"}).re("[(?<x>]+").action("keep")}, paren) == paren);
  CHECK(Run({R().src({"a"}).re("\\(\\?<x>").action("keep")}, paren) == paren);
  CHECK(Run({R().src({"a"}).re("\\Q(?<x>\\E").action("keep")}, paren) == paren);
}

TEST_CASE("regex: leftmost-first submatches, greedy and lazy",
          "[relabel][regex]") {
  // Perl/RE2 semantics; POSIX leftmost-longest would give "ab-c-d".
  CHECK(
      Run({R().src({"a"}).re("(a|ab)(c|bcd)(d*)").target("t").repl("$1-$2-$3")},
          {{"a", "abcd"}})
          ->at("t") == "a-bcd-");
  CHECK(Run({R().src({"a"}).re("(.*)(\\d*)").target("t").repl("$1|$2")},
            {{"a", "abc123"}})
            ->at("t") == "abc123|");
  CHECK(Run({R().src({"a"}).re("(.*?)(\\d*)").target("t").repl("$1|$2")},
            {{"a", "abc123"}})
            ->at("t") == "abc|123");
  CHECK(Run({R().src({"a"}).re("(a*)(a*)").target("t").repl("$1|$2")},
            {{"a", "aaa"}})
            ->at("t") == "aaa|");
}

TEST_CASE("regex: compile errors are config errors", "[relabel][regex]") {
  CHECK(ErrorOf(R().src({"a"}).re("(a").action("keep")) ==
        "regex: error parsing regexp: missing closing ): `(a`");
  CHECK(ErrorOf(R().src({"a"}).re("a)").action("keep")) ==
        "regex: error parsing regexp: unexpected ): `a)`");
  CHECK(ErrorOf(R().src({"a"}).re("[a").action("keep")) ==
        "regex: error parsing regexp: missing closing ]: `[a`");
  CHECK(
      ErrorOf(R().src({"a"}).re("a**").action("keep")) ==
      "regex: error parsing regexp: invalid nested repetition operator: `**`");
  CHECK(ErrorOf(R().src({"a"}).re("*").action("keep")) ==
        "regex: error parsing regexp: missing argument to repetition operator: "
        "`*`");
  CHECK(ErrorOf(R().src({"a"}).re("\\8").action("keep")) ==
        "regex: error parsing regexp: invalid escape sequence: `\\8`");
  CHECK(ErrorOf(R().src({"a"}).re("a\\").action("keep"))
            .starts_with("regex: error parsing regexp: trailing backslash at "
                         "end of expression"));
  CHECK(ErrorOf(R().src({"a"}).re("(?<a-b>x)").action("keep")) ==
        "regex: error parsing regexp: invalid named capture: `(?<a-b>`");
  CHECK(
      ErrorOf(R().src({"a"}).re("(?=x)").action("keep")) ==
      "regex: error parsing regexp: invalid or unsupported Perl syntax: `(?=`");
  CHECK(ErrorOf(R().src({"a"}).re("a{1001}").action("keep")) ==
        "regex: error parsing regexp: invalid repeat count: `{1001}`");
  // Go rejects \C (RE2 would take it as "any byte").
  CHECK(ErrorOf(R().src({"a"}).re("a\\C").action("keep")) ==
        "regex: error parsing regexp: invalid escape sequence: `\\C`");
  // The default action replace compiles its regex too.
  CHECK(ErrorOf(R().src({"a"}).re("(").target("t"))
            .starts_with("regex: error parsing regexp: "));
  // A regex error is reported before validation errors of the rule.
  CHECK(ErrorOf(R().re("(").action_null()).starts_with("regex: "));
}

TEST_CASE("regex: invalid UTF-8 input matches like Go (bytes as U+FFFD)",
          "[relabel][regex]") {
  const std::string v = std::string("a\xff") + "b";
  LabelMap in{{"a", v}};
  CHECK(Run({R().src({"a"}).re("a.b").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"})
                 .re("a\xEF\xBF\xBD"
                     "b")
                 .action("keep")},
            in) == in);
  CHECK(Run({R().src({"a"}).re("a[^x]b").action("keep")}, in) == in);
  CHECK(Run({R().src({"a"}).re("(a)(.)(b)").target("t").repl("$2")}, in)
            ->at("t") == "\xff");
  CHECK(Run({R().src({"a"}).target("t")}, in)->at("t") == v);
  CHECK(Run({R().src({"a"}).re("a(.*)").target("t")}, in)->at("t") ==
        "\xff"
        "b");
  // Truncated sequence: each byte is its own U+FFFD.
  LabelMap trunc{{"a", "x\xe2\x82y"}};
  CHECK(Run({R().src({"a"}).re("x..y").action("keep")}, trunc) == trunc);
  CHECK_FALSE(Run({R().src({"a"}).re("x.y").action("keep")}, trunc));
}

// --- 4. Templates
// -------------------------------------------------------------

std::string Expand(const std::string& regex, const std::string& value,
                   const std::string& repl) {
  auto out = Run({R().src({"a"}).re(regex).target("t").repl(repl)},
                 {{"a", value}, {"keep", "1"}});
  REQUIRE(out.has_value());
  auto it = out->find("t");
  return it == out->end() ? "" : it->second;
}

TEST_CASE("template: $$, braces, name runs, numbers", "[relabel][template]") {
  CHECK(Expand("(a)(b)", "ab", "$$1") == "$1");
  CHECK(Expand("(a)(b)", "ab", "$$$1") == "$a");
  CHECK(Expand("(a)(b)", "ab", "${1}x") == "ax");
  CHECK(Expand("(a)(b)", "ab", "$1x") == "");  // group "1x" does not exist
  CHECK(Expand("(a)(b)", "ab", "$1-$2") == "a-b");
  CHECK(Expand("(a)(b)", "ab", "$1_") == "");  // `_` is part of the name
  CHECK(Expand("(a)(b)", "ab", "$1.$2") == "a.b");
  CHECK(Expand("(a)(b)", "ab", "$0") == "ab");
  CHECK(Expand("(a)(b)", "ab", "${0}") == "ab");
  CHECK(Expand("(a)(b)", "ab", "$01") == "");    // leading zero: a name
  CHECK(Expand("(a)(b)", "ab", "$3") == "");     // no such group
  CHECK(Expand("(a)(b)", "ab", "x$3y") == "x");  // group "3y"
  CHECK(Expand("(a)(b)", "ab", "x${3}y") == "xy");
  CHECK(Expand("(a)(b)", "ab", "$1\xC3\xA4") ==
        "");  // ä is a letter: name "1ä"
  CHECK(Expand("(a)(b)", "ab", "$1\xE2\x82\xAC") ==
        "a\xE2\x82\xAC");  // € is not
  CHECK(Expand("(a)(b)", "ab", "$99999999999") == "");
}

TEST_CASE("template: named groups and non-participating groups",
          "[relabel][template]") {
  CHECK(Expand("(?P<first>a)(?P<second>b)", "ab", "$second$first") == "ba");
  CHECK(Expand("(?P<first>a)(?P<second>b)", "ab", "${second}-${first}") ==
        "b-a");
  CHECK(Expand("(?P<first>a)(?P<second>b)", "ab", "${third}x") == "x");
  CHECK(Expand("(?P<first>a)(?P<second>b)", "ab", "$2") == "b");
  CHECK(Expand("(a)|(b)", "b", "[$1][$2]") == "[][b]");
  // Duplicate names: the first group of that name that took part.
  CHECK(Expand("(?P<n>a)|(?P<n>b)", "b", "[$n]") == "[b]");
  CHECK(Expand("(?P<n>a)|(?P<n>b)", "a", "[$n]") == "[a]");
}

TEST_CASE("template: malformed references are literal", "[relabel][template]") {
  CHECK(Expand("(a)", "a", "x$") == "x$");
  CHECK(Expand("(a)", "a", "${") == "${");
  CHECK(Expand("(a)", "a", "${}") == "${}");
  CHECK(Expand("(a)", "a", "${1") == "${1");
  CHECK(Expand("(a)", "a", "${1-}") == "${1-}");
  CHECK(Expand("(a)", "a", "$-1") == "$-1");
  CHECK(Expand("(a)", "a", "$ $1") == "$ a");
  CHECK(Expand("(a)", "a", "${1}${") == "a${");
}

TEST_CASE("template: only replace and labelmap expand", "[relabel][template]") {
  LabelMap in{{"a", "x"}};
  // Target of replace is a template.
  CHECK(Run({R().src({"a"}).re("(.*)").target("t_$1").repl("v")}, in)
            ->at("t_x") == "v");
  // lowercase/uppercase/hashmod/keepequal targets are literal names.
  CHECK(Run({R().src({"a"}).target("${1}").action("uppercase")}, in)
            ->at("${1}") == "X");
  CHECK(Run({R().src({"a"}).target("$1").action("hashmod").mod(10)}, in)
            ->count("$1") == 1);
  LabelMap eq{{"a", "x"}, {"$1", "x"}};
  CHECK(Run({R().src({"a"}).target("$1").action("keepequal")}, eq) == eq);
  // labelmap expands its replacement.
  CHECK(Run({R().re("(a)").repl("m_${1}_$$").action("labelmap")}, in)
            ->at("m_a_$") == "x");
}

// --- 5. Actions
// ---------------------------------------------------------------

TEST_CASE("replace: no match does nothing", "[relabel][replace]") {
  LabelMap in{{"a", "x"}, {"t", "old"}};
  CHECK(Run({R().src({"a"}).re("y").target("t").repl("")}, in) == in);
}

TEST_CASE("replace: invalid expanded target is skipped silently",
          "[relabel][replace]") {
  LabelMap in{{"a", "foo-bar"}, {"b", "v"}};
  auto rule = R().src({"a"}).re("(.*)").target("${1}").repl("set");
  // foo-bar is a valid UTF-8 name but not a legacy one.
  CHECK(Run({rule}, in, kUtf8)->at("foo-bar") == "set");
  CHECK(Run({rule}, in, kLegacy) == in);
  // Expanding to "" is skipped under both schemes, even with an empty value.
  auto empty_target = R().src({"a"}).re("(.*)").target("${2}").repl("");
  CHECK(Run({empty_target}, in, kUtf8) == in);
  CHECK(Run({empty_target}, in, kLegacy) == in);
  // Legacy: a target that starts with a digit after expansion.
  CHECK(Run({R().src({"b"}).re("(.*)").target("${1}_ok").repl("1")},
            {{"b", "9"}}, kLegacy) == LabelMap{{"b", "9"}});
  CHECK(Run({R().src({"b"}).re("(.*)").target("x${1}").repl("1")}, {{"b", "9"}},
            kLegacy) == LabelMap{{"b", "9"}, {"x9", "1"}});
  // Invalid UTF-8 in an expanded target is invalid under UTF-8 too.
  CHECK(Run({R().src({"a"}).re("(.*)").target("n$1").repl("1")},
            {{"a", "\xff"}}, kUtf8) == LabelMap{{"a", "\xff"}});
}

TEST_CASE("replace: empty replacement deletes, other values overwrite",
          "[relabel][replace]") {
  LabelMap in{{"a", "x"}, {"t", "old"}};
  CHECK(Run({R().src({"a"}).target("t").repl("")}, in) == LabelMap{{"a", "x"}});
  CHECK(Run({R().src({"a"}).target("t").repl("new")}, in)->at("t") == "new");
  CHECK(Run({R().src({"a"}).re("(x)(y?)").target("t").repl("$2")}, in) ==
        LabelMap{{"a", "x"}});
}

TEST_CASE("replace: fixed label and copy of an absent label",
          "[relabel][replace]") {
  LabelMap in{{"a", "x"}, {"env", "dev"}};
  CHECK(Run({R().target("env").repl("prod")}, in)->at("env") == "prod");
  CHECK(Run({R().target("region").repl("eu")}, in)->at("region") == "eu");
  CHECK(Run({R().src({"absent"}).target("env")}, in) == LabelMap{{"a", "x"}});
  // With a source value, the default regex matches too and $1 copies it.
  CHECK(Run({R().src({"a"}).target("env")}, in)->at("env") == "x");
}

TEST_CASE("keepequal/dropequal: absent counts as empty", "[relabel][equal]") {
  LabelMap in{{"a", "x"}};
  CHECK(Run({R().src({"missing"}).target("also_missing").action("keepequal")},
            in) == in);
  CHECK_FALSE(Run(
      {R().src({"missing"}).target("also_missing").action("dropequal")}, in));
  CHECK_FALSE(Run({R().src({"a"}).target("missing").action("keepequal")}, in));
  CHECK(Run({R().src({"a"}).target("missing").action("dropequal")}, in) == in);
  // The joined value is compared, no regex involved.
  LabelMap joined{{"a", "x"}, {"b", "y"}, {"c", "x;y"}};
  CHECK(Run({R().src({"a", "b"}).target("c").action("keepequal")}, joined) ==
        joined);
  LabelMap dot{{"a", "x.y"}, {"c", "x-y"}};
  CHECK_FALSE(Run({R().src({"a"}).target("c").action("keepequal")}, dot));
}

TEST_CASE("lowercase/uppercase: Unicode one-to-one", "[relabel][case]") {
  auto lower = [](const std::string& v) {
    auto out =
        Run({R().src({"a"}).target("t").action("lowercase")}, {{"a", v}});
    return out->count("t") ? out->at("t") : std::string("<deleted>");
  };
  auto upper = [](const std::string& v) {
    auto out =
        Run({R().src({"a"}).target("t").action("uppercase")}, {{"a", v}});
    return out->count("t") ? out->at("t") : std::string("<deleted>");
  };
  CHECK(lower("\xC3\x84pfel") == "\xC3\xA4pfel");  // Äpfel -> äpfel
  CHECK(upper("\xC3\xA4pfel") == "\xC3\x84PFEL");  // äpfel -> ÄPFEL
  CHECK(upper("stra\xC3\x9F"
              "e") ==
        "STRA\xC3\x9F"
        "E");                                  // ß has no simple upper
  CHECK(lower("\xE1\xBA\x9E") == "\xC3\x9F");  // ẞ -> ß
  CHECK(upper("\xC3\xBF") == "\xC5\xB8");      // ÿ -> Ÿ (Latin Extended-A)
  CHECK(upper("\xC2\xB5") == "\xCE\x9C");      // µ -> Greek capital Mu
  CHECK(lower("\xC4\xB0") == "i");             // İ -> i (one char, no dot)
  CHECK(upper("\xC4\xB1") == "I");             // ı -> I
  CHECK(upper("\xC5\xBF") == "S");             // ſ -> S
  CHECK(lower("\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x99\xCE\x91") ==
        "\xCF\x83\xCE\xBF\xCF\x86\xCE\xB9\xCE\xB1");  // ΣΟΦΙΑ -> σοφια (no
                                                      // final sigma)
  CHECK(upper("\xCF\x82") == "\xCE\xA3");  // ς -> Σ
  CHECK(
      upper("\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82") ==
      "\xD0\x9F\xD0\xA0\xD0\x98\xD0\x92\xD0\x95\xD0\xA2");  // привет -> ПРИВЕТ
  CHECK(lower("\xC7\x85") == "\xC7\x86");      // ǅ -> ǆ (title case)
  CHECK(upper("\xC7\x85") == "\xC7\x84");      // ǅ -> Ǆ
  CHECK(upper("\xC9\x90") == "\xE2\xB1\xAF");  // ɐ -> Ɐ (grows by a byte)
  CHECK(lower("ABC-123_\xE2\x82\xAC") == "abc-123_\xE2\x82\xAC");
  CHECK(upper("x\xffy") == "X\xEF\xBF\xBDY");  // invalid byte -> U+FFFD
  CHECK(lower("already lower") == "already lower");
  // Empty result deletes the target.
  CHECK(Run({R().src({"missing"}).target("t").action("lowercase")},
            {{"a", "1"}, {"t", "old"}}) == LabelMap{{"a", "1"}});
  // Joined sources.
  CHECK(Run({R().src({"a", "b"}).target("t").action("uppercase")},
            {{"a", "x"}, {"b", "y"}})
            ->at("t") == "X;Y");
}

TEST_CASE("hashmod: MD5 low 64 bits big-endian mod modulus",
          "[relabel][hashmod]") {
  auto hash = [](const std::string& v, uint64_t mod) {
    return Run({R().src({"a"}).target("h").action("hashmod").mod(mod)},
               {{"a", v}})
        ->at("h");
  };
  CHECK(hash("baz", 1000) == "976");
  CHECK(hash("foo\nbar", 1000) == "734");
  CHECK(hash("anything", 1) == "0");
  // md5("") = d41d8cd98f00b204e9800998ecf8427e: low 8 bytes 0xe9800998ecf8427e.
  CHECK(
      Run({R().src({"missing"}).target("h").action("hashmod").mod(UINT64_MAX)},
          {{"a", "1"}})
          ->at("h") == std::to_string(0xe9800998ecf8427eULL % UINT64_MAX));
  CHECK(Run({R().target("h").action("hashmod").mod(1000000)}, {{"a", "1"}})
            ->at("h") == std::to_string(0xe9800998ecf8427eULL % 1000000));
  // Joined value with separator.
  CHECK(Run({R().src({"a", "b"})
                 .sep("\n")
                 .target("h")
                 .action("hashmod")
                 .mod(1000)},
            {{"a", "foo"}, {"b", "bar"}})
            ->at("h") == "734");
}

TEST_CASE("labelmap: originals stay, new labels copy values",
          "[relabel][labelmap]") {
  CHECK(Run({R().re("__meta_(.+)").action("labelmap")},
            {{"__meta_x", "1"}, {"y", "2"}}) ==
        LabelMap{{"__meta_x", "1"}, {"x", "1"}, {"y", "2"}});
}

TEST_CASE("labelmap: labels written during the step are not revisited",
          "[relabel][labelmap]") {
  CHECK(Run({R().re("(.*)").repl("x_$1").action("labelmap")}, {{"a", "1"}}) ==
        LabelMap{{"a", "1"}, {"x_a", "1"}});
}

TEST_CASE("labelmap: collisions and overwrites", "[relabel][labelmap]") {
  // Untouched input labels in byte order: b_x is visited last and wins.
  CHECK(Run({R().re(".*_(x)").repl("m").action("labelmap")},
            {{"a_x", "1"}, {"b_x", "2"}})
            ->at("m") == "2");
  CHECK(Run({R().re(".*_(x)").repl("m").action("labelmap")},
            {{"B_x", "1"}, {"a_x", "2"}})
            ->at("m") == "2");
  // A mapped name overwrites an existing label.
  CHECK(Run({R().re("src").repl("dst").action("labelmap")},
            {{"src", "new"}, {"dst", "old"}})
            ->at("dst") == "new");
}

TEST_CASE("labelmap: visit order is untouched input, then written labels",
          "[relabel][labelmap]") {
  auto map_to_m = R().re(".*_(x)").repl("m").action("labelmap");
  // a_x is written by a rule, b_x is untouched input: b_x is visited first
  // even though a_x sorts first, so a_x wins.
  CHECK(Run({R().target("a_x").repl("written"), map_to_m}, {{"b_x", "input"}})
            ->at("m") == "written");
  // Overwriting an input label makes it a written label.
  CHECK(Run({R().target("a_x").repl("rewritten"), map_to_m},
            {{"a_x", "input"}, {"b_x", "input_b"}})
            ->at("m") == "rewritten");
  // Written labels in write order: a_x after z_x wins.
  CHECK(
      Run({R().target("z_x").repl("z"), R().target("a_x").repl("a"), map_to_m},
          {{"k", "v"}})
          ->at("m") == "a");
  // Updating a written label keeps its place.
  CHECK(Run({R().target("a_x").repl("a1"), R().target("z_x").repl("z"),
             R().target("a_x").repl("a2"), map_to_m},
            {{"k", "v"}})
            ->at("m") == "z");
  // Deleting and writing again moves it to the end.
  CHECK(Run({R().target("a_x").repl("a1"), R().target("z_x").repl("z"),
             R().re("a_x").action("labeldrop"), R().target("a_x").repl("a2"),
             map_to_m},
            {{"k", "v"}})
            ->at("m") == "a2");
}

TEST_CASE("labelmap: the new name is not checked at run time",
          "[relabel][labelmap]") {
  // Under legacy the replacement passes validation, the result is set anyway.
  CHECK(Run({R().re("(.*)").repl("${1}").action("labelmap")}, {{"a.b", "1"}},
            kLegacy) == LabelMap{{"a.b", "1"}});
  CHECK(Run({R().re("(a)(.*)").repl("${2}_$1").action("labelmap")},
            {{"a-b", "1"}}, kLegacy)
            ->at("-b_a") == "1");
  // Even an empty name is set (Go's builder takes it).
  RuleSet rs = MustCompile({R().re("(a)").repl("$2").action("labelmap")});
  LabelBuilder b;
  std::vector<Label> in = {{"a", "1"}};
  b.Reset(in);
  REQUIRE(rs.Apply(b));
  auto out = b.Result();
  REQUIRE(out.size() == 2);
  CHECK(out[0] == Label{"", "1"});
  CHECK(out[1] == Label{"a", "1"});
}

TEST_CASE("labelmap/labeldrop/labelkeep ignore source_labels",
          "[relabel][labelmap]") {
  CHECK(Run({R().src({"a"}).re("(a)").repl("b").action("labelmap")},
            {{"a", "1"}}) == LabelMap{{"a", "1"}, {"b", "1"}});
}

TEST_CASE("labeldrop/labelkeep can remove __name__", "[relabel][labeldrop]") {
  LabelMap in{{"__name__", "up"}, {"job", "j"}, {"instance", "i"}};
  CHECK(Run({R().re("__name__").action("labeldrop")}, in) ==
        LabelMap{{"instance", "i"}, {"job", "j"}});
  CHECK(Run({R().re("job|instance").action("labelkeep")}, in) ==
        LabelMap{{"instance", "i"}, {"job", "j"}});
  CHECK(Run({R().re("job").action("labelkeep")}, in) == LabelMap{{"job", "j"}});
  CHECK(Run({R().re("__.*").action("labeldrop")}, in) ==
        LabelMap{{"instance", "i"}, {"job", "j"}});
  CHECK(Run({R().re("(?i)JOB").action("labeldrop")}, in) ==
        LabelMap{{"__name__", "up"}, {"instance", "i"}});
  // labeldrop of written labels too.
  CHECK(
      Run({R().target("added").repl("1"), R().re("add.*").action("labeldrop")},
          in) == in);
}

TEST_CASE("Starform rules: platform split and GDPR drop",
          "[relabel][starform]") {
  std::vector<RuleSpec> grafana = {
      R().src({"job"})
          .re("shuttle|node-exporter|kube-state-metrics|envoy-self")
          .action("keep"),
      R().re("project_id|service_id|workspace_id").action("labeldrop")};
  std::vector<RuleSpec> vm = {
      R().src({"job"})
          .re("shuttle|node-exporter|kube-state-metrics|envoy-self")
          .action("drop")};
  LabelMap platform{{"__name__", "shuttle_requests_total"},
                    {"job", "shuttle"},
                    {"project_id", "p1"},
                    {"service_id", "s1"},
                    {"workspace_id", "w1"},
                    {"code", "200"}};
  LabelMap customer{{"__name__", "container_cpu_usage_seconds_total"},
                    {"job", "cadvisor"},
                    {"project_id", "p1"}};
  CHECK(Run(grafana, platform) ==
        LabelMap{{"__name__", "shuttle_requests_total"},
                 {"job", "shuttle"},
                 {"code", "200"}});
  CHECK_FALSE(Run(vm, platform));
  CHECK_FALSE(Run(grafana, customer));
  CHECK(Run(vm, customer) == customer);
  // Anchoring: a job that merely contains a platform name is a customer's.
  LabelMap lookalike{{"job", "shuttle-customer"}};
  CHECK_FALSE(Run(grafana, lookalike));
  CHECK(Run(vm, lookalike) == lookalike);
}

// --- After the rules -------------------------------------------------------

TEST_CASE("result: empty values removed, sorted, empty set dropped",
          "[relabel][result]") {
  RuleSet none = MustCompile({});
  LabelBuilder b;
  std::vector<Label> in = {{"z", "1"}, {"e", ""}, {"a", "2"}, {"m", "3"}};
  b.Reset(in);
  REQUIRE(none.Apply(b));
  auto out = b.Result();
  REQUIRE(out.size() == 3);
  CHECK(out[0] == Label{"a", "2"});
  CHECK(out[1] == Label{"m", "3"});
  CHECK(out[2] == Label{"z", "1"});
  // Only empty values: nothing left, dropped.
  std::vector<Label> empty = {{"a", ""}};
  b.Reset(empty);
  CHECK_FALSE(none.Apply(b));
  b.Reset({});
  CHECK_FALSE(none.Apply(b));
  // Rules that remove every label drop the series.
  CHECK_FALSE(
      Run({R().re(".*").action("labeldrop")}, {{"a", "1"}, {"b", "2"}}));
  CHECK_FALSE(Run({R().re("x").action("labelkeep")}, {{"a", "1"}}));
  CHECK_FALSE(Run({R().src({"a"}).target("a").repl("")}, {{"a", "1"}}));
  // Byte-wise order: uppercase before lowercase, UTF-8 after ASCII.
  auto sorted =
      Run({R().target("\xC3\xA9").repl("1"), R().target("Z").repl("1")},
          {{"a", "1"}, {"_", "1"}});
  std::vector<std::string> names;
  for (const auto& [k, v] : *sorted) names.push_back(k);
  CHECK(names == std::vector<std::string>{"Z", "_", "a", "\xC3\xA9"});
}

// --- 7. Name schemes
// -----------------------------------------------------------

TEST_CASE("name schemes", "[relabel][scheme]") {
  for (const char* name :
       {"utf-8.label", "0", "-x", "${3}", "a b", "\xC3\xA4"}) {
    INFO(name);
    CHECK(IsValidLabelName(name, kUtf8));
    CHECK_FALSE(IsValidLabelName(name, kLegacy));
  }
  for (const char* name : {"a", "_", "A_9", "__name__", "_0"}) {
    INFO(name);
    CHECK(IsValidLabelName(name, kUtf8));
    CHECK(IsValidLabelName(name, kLegacy));
  }
  CHECK_FALSE(IsValidLabelName("", kUtf8));
  CHECK_FALSE(IsValidLabelName("", kLegacy));
  CHECK_FALSE(IsValidLabelName("\xff", kUtf8));
  CHECK_FALSE(IsValidLabelName("\xed\xa0\x80", kUtf8));  // surrogate
  CHECK_FALSE(IsValidLabelName("\xc0\xaf", kUtf8));      // overlong
  // A UTF-8 name as literal target works only under UTF-8.
  CHECK(Run({R().target("utf-8.label").repl("v")}, {{"a", "1"}}, kUtf8)
            ->at("utf-8.label") == "v");
  CHECK(ErrorOf(R().target("utf-8.label").repl("v"), kLegacy) ==
        "target_label: \"utf-8.label\" is invalid 'target_label' for replace "
        "action");
}

}  // namespace
}  // namespace promrelay::relabel::testing
