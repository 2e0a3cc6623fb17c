// Unit tests of the relabel building blocks: regex fast paths against RE2,
// the `(?<name>` rewrite, Go template parsing, UTF-8 and case mapping, MD5,
// and the LabelBuilder API.
#include <openssl/evp.h>

#include <random>
#include <thread>

#include "proxy/relabel/md5.h"
#include "proxy/relabel/regex.h"
#include "proxy/relabel/template.h"
#include "proxy/relabel/unicode.h"
#include "tests/relabel/helpers.h"

namespace promrelay::relabel::internal {
namespace {

Regex MustRegex(const std::string& p, bool fast = true) {
  auto r = Regex::Compile(p, fast);
  INFO(p << ": " << r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

TEST_CASE("regex: fast path selection", "[relabel][internals]") {
  using K = Regex::Kind;
  const std::pair<const char*, K> cases[] = {
      {"(.*)", K::kAffix},
      {".*", K::kAffix},
      {"^.*$", K::kAffix},
      {"(.+)", K::kAffix},
      {".+", K::kAffix},
      {"__meta_(.+)", K::kAffix},
      {"(.*)_total", K::kAffix},
      {"a(.*)b", K::kAffix},
      {"a.+b", K::kAffix},
      {"(.*)?", K::kRe2},
      {"(.*)(.*)", K::kRe2},
      {"(.*).*", K::kRe2},
      {"(.*?)", K::kRe2},
      {"(a.*)", K::kRe2},
      {"shuttle|node-exporter|kube-state-metrics|envoy-self", K::kLiterals},
      {"project_id|service_id|workspace_id", K::kLiterals},
      {"", K::kLiterals},
      {"a|", K::kLiterals},
      {"^a$|^b$", K::kLiterals},
      {"a\\.b", K::kLiterals},
      {"10\\.0\\.0\\.1:80", K::kLiterals},
      {"foo.*", K::kAffix},
      {".*_total", K::kAffix},
      {".*_total$", K::kAffix},
      {".*-metrics.*", K::kContains},
      {"(a)", K::kRe2},
      {"a.b", K::kRe2},
      {"a*", K::kRe2},
      {".*?", K::kRe2},
      {"(?i)abc", K::kRe2},
      {"a\\d", K::kRe2},
      {"[ab]", K::kRe2},
      {"a{2}", K::kRe2},
      {".*a.*b", K::kRe2},
      {"a\xEF\xBF\xBD", K::kRe2},  // U+FFFD: left to RE2
      {"f|o.*", K::kRe2},
  };
  for (const auto& [p, kind] : cases) {
    INFO(p);
    CHECK(MustRegex(p).kind() == kind);
    CHECK(MustRegex(p, false).kind() == K::kRe2);
  }
  CHECK(MustRegex("a|b|c").literals() ==
        std::vector<std::string>{"a", "b", "c"});
  CHECK(MustRegex("\\$x|y\\|z").literals() ==
        std::vector<std::string>{"$x", "y|z"});
}

// Random strings over an alphabet that hits the interesting bytes.
std::string RandomString(std::mt19937& rng, size_t max_len) {
  static const std::vector<std::string> atoms = {"a",
                                                 "b",
                                                 "c",
                                                 "_",
                                                 "-",
                                                 ".",
                                                 "|",
                                                 "$",
                                                 "\n",
                                                 "\xC3\xA4",
                                                 "\xE2\x82\xAC",
                                                 "\xff",
                                                 "\xe2\x82",
                                                 "\xEF\xBF\xBD",
                                                 "ab",
                                                 "foo",
                                                 "_total"};
  std::uniform_int_distribution<size_t> len(0, max_len);
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1);
  std::string s;
  for (size_t i = len(rng); i > 0; --i) s += atoms[pick(rng)];
  return s;
}

std::string RandomLiteral(std::mt19937& rng) {
  static const std::vector<std::string> atoms = {
      "a", "b", "_", "-", "\\.", "\\|", "\\$", "\xC3\xA4", "foo", "\n", "\\*"};
  std::uniform_int_distribution<size_t> len(0, 3);
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1);
  std::string s;
  for (size_t i = len(rng); i > 0; --i) s += atoms[pick(rng)];
  return s;
}

TEST_CASE("regex: fast paths agree with RE2", "[relabel][internals]") {
  std::mt19937 rng(12345);
  std::vector<std::string> patterns = {"(.*)", ".*", ".+", "(.+)",
                                       "^.*$", "",   "a|", "|a"};
  for (int i = 0; i < 300; ++i) {
    std::string lit = RandomLiteral(rng);
    switch (i % 5) {
      case 0:
        patterns.push_back(lit + ".*");
        break;
      case 1:
        patterns.push_back(".*" + lit);
        break;
      case 2:
        patterns.push_back(".*" + lit + ".*");
        break;
      case 3:
        patterns.push_back(lit + "|" + RandomLiteral(rng));
        break;
      default: {
        std::string alt = lit;
        for (int k = 0; k < 10; ++k)
          alt += "|" + RandomLiteral(rng);  // > 8: hash set
        patterns.push_back(alt);
      }
    }
  }
  MatchScratch scratch;
  std::vector<Group> fg(3), sg(3);
  int matched = 0, matched_with_group = 0;
  for (const std::string& p : patterns) {
    Regex fast = MustRegex(p, true);
    Regex slow = MustRegex(p, false);
    REQUIRE(fast.num_groups() == slow.num_groups());
    int n = fast.num_groups();
    // Inputs: random ones plus the pattern's own literals.
    std::vector<std::string> inputs;
    for (int k = 0; k < 40; ++k) inputs.push_back(RandomString(rng, 6));
    std::vector<std::string> seeds = fast.literals();
    seeds.push_back(fast.prefix() + fast.suffix());
    seeds.push_back(fast.prefix() + "x" + fast.suffix());
    seeds.push_back(fast.prefix() + "\xff\n" + fast.suffix());
    seeds.push_back(fast.prefix() + fast.suffix() + fast.prefix() +
                    fast.suffix());
    for (const std::string& l : seeds) {
      inputs.push_back(l);
      inputs.push_back(l + "x");
      inputs.push_back("\xff" + l);
      inputs.push_back(l + "\xe2");
    }
    for (const std::string& in : inputs) {
      INFO("pattern " << p << " input " << in);
      bool a = fast.Match(in, scratch);
      bool b = slow.Match(in, scratch);
      REQUIRE(a == b);
      bool ga = fast.MatchGroups(in, n, fg.data(), scratch);
      bool gb = slow.MatchGroups(in, n, sg.data(), scratch);
      REQUIRE(ga == a);
      REQUIRE(gb == b);
      if (a) {
        ++matched;
        if (n > 0) ++matched_with_group;
        for (int g = 0; g <= n; ++g) {
          CHECK(fg[g] == sg[g]);
          CHECK((fg[g].data() == nullptr) == (sg[g].data() == nullptr));
        }
      }
    }
  }
  // The comparison must not be vacuous.
  CHECK(matched > 500);
  CHECK(matched_with_group > 100);
}

TEST_CASE("regex: (?<name> rewrite", "[relabel][internals]") {
  auto rw = [](const std::string& p) {
    auto r = RewriteForRe2(p);
    REQUIRE(r.ok());
    return *r;
  };
  CHECK(rw("(?<a>x)") == "(?P<a>x)");
  CHECK(rw("(?P<a>x)(?<b>y)") == "(?P<a>x)(?P<b>y)");
  CHECK(rw("[(?<a>]") == "[(?<a>]");
  CHECK(rw("[](?<a>]") == "[](?<a>]");
  CHECK(rw("[^](?<a>]") == "[^](?<a>]");
  CHECK(rw("[[:alpha:](?<a>]") == "[[:alpha:](?<a>]");
  CHECK(rw("[\\](?<a>]") == "[\\](?<a>]");
  CHECK(rw("[a](?<b>c)") == "[a](?P<b>c)");
  CHECK(rw("\\(?<a>") == "\\(?<a>");
  CHECK(rw("\\Q(?<a>\\E(?<b>x)") == "\\Q(?<a>\\E(?P<b>x)");
  CHECK(rw("\\\\(?<a>x)") == "\\\\(?P<a>x)");
  CHECK_FALSE(RewriteForRe2("(?<\xC3\xA4>x)").ok());
  CHECK_FALSE(RewriteForRe2("(?P<\xC3\xA4>x)").ok());
  CHECK_FALSE(RewriteForRe2("(?<>x)").ok());
  CHECK_FALSE(RewriteForRe2("(?<a").ok());
  CHECK_FALSE(RewriteForRe2("\\C").ok());
  CHECK_FALSE(RewriteForRe2("[\\C]").ok());
  // Named groups from the rewritten form are visible to templates.
  Regex r = MustRegex("(?<k>a)(b)");
  CHECK(r.num_groups() == 2);
  CHECK(r.group_names().at(1) == "k");
}

TEST_CASE("template: parse and expand", "[relabel][internals]") {
  std::map<int, std::string> names = {{1, "x"}};
  auto expand = [&](const std::string& t) {
    Template tp = Template::Parse(t, 2, names);
    std::vector<Group> g = {"abc", "a", Group()};  // group 2 did not take part
    std::string out;
    tp.Expand(g.data(), out);
    CHECK(tp.ExpandedSize(g.data()) == out.size());
    return out;
  };
  CHECK(expand("$0|$1|$2|$x|${x}|$$") == "abc|a||a|a|$");
  CHECK(expand("lit") == "lit");
  CHECK(Template::Parse("lit", 2, names).is_literal());
  CHECK(Template::Parse("a$$b", 2, names).is_literal());
  CHECK(Template::Parse("a$$b", 2, names).literal() == "a$b");
  CHECK(Template::Parse("x$3", 2, names).is_literal());  // no group 3: ""
  CHECK(Template::Parse("x$3", 2, names).literal() == "x");
  CHECK(Template::Parse("$1", 2, names).single_group() == 1);
  CHECK(Template::Parse("${x}", 2, names).single_group() == 1);
  CHECK(Template::Parse("a$1", 2, names).single_group() == -1);
  CHECK(Template::Parse("$2$1", 2, names).max_group() == 2);
  CHECK(expand("$\xC3\xA4") == "");  // a Unicode-letter name
  CHECK(expand("$\xD9\xA1") == "");  // ARABIC-INDIC DIGIT ONE: a name, not 1
  CHECK(expand("${1}\xD9\xA1") == "a\xD9\xA1");
  CHECK(expand("$\xff") == "$\xff");  // invalid byte ends the name: empty
}

TEST_CASE("utf8: decode like Go", "[relabel][internals]") {
  auto width = [](const std::string& s) { return DecodeRune(s).width; };
  auto rune = [](const std::string& s) { return DecodeRune(s).rune; };
  CHECK(rune("a") == U'a');
  CHECK(rune("\xC3\xA4") == U'\u00E4');
  CHECK(width("\xC3\xA4") == 2);
  CHECK(rune("\xE2\x82\xAC") == U'\u20AC');
  CHECK(rune("\xF0\x9F\x98\x80") == U'\U0001F600');
  CHECK(width("\xF0\x9F\x98\x80") == 4);
  for (const char* bad :
       {"\x80", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80",
        "\xF0\x80\x80\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF",
        "\xC3", "\xE2\x82", "\xC3\x41"}) {
    INFO(bad);
    CHECK(rune(bad) == kRuneError);
    CHECK(width(bad) == 1);
    CHECK_FALSE(IsValidUtf8(bad));
  }
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ascii text longer than eight bytes"));
  CHECK(IsValidUtf8("\xEF\xBF\xBD"));
  CHECK_FALSE(IsValidUtf8("plain ascii text longer than eight bytes\xff"));
}

TEST_CASE("unicode: simple case mapping tables", "[relabel][internals]") {
  // Latin-1 letters (except × ÷) map by 0x20; ÿ maps to Ÿ (U+0178).
  for (char32_t c = 0xC0; c <= 0xDE; ++c) {
    if (c == 0xD7) continue;
    CHECK(SimpleToLower(c) == c + 0x20);
    CHECK(SimpleToUpper(c + 0x20) == c);
  }
  CHECK(SimpleToUpper(0xD7) == 0xD7);
  CHECK(SimpleToUpper(0xF7) == 0xF7);
  CHECK(SimpleToUpper(0xFF) == 0x178);
  // Latin Extended-A: pairs U+0100..U+012F.
  for (char32_t c = 0x100; c < 0x130; c += 2) {
    CHECK(SimpleToLower(c) == c + 1);
    CHECK(SimpleToUpper(c + 1) == c);
  }
  // Greek and Cyrillic alphabets.
  for (char32_t c = 0x391; c <= 0x3A9; ++c) {
    if (c == 0x3A2) continue;  // unassigned
    CHECK(SimpleToLower(c) == c + 0x20);
  }
  for (char32_t c = 0x410; c <= 0x42F; ++c) {
    CHECK(SimpleToLower(c) == c + 0x20);
    CHECK(SimpleToUpper(c + 0x20) == c);
  }
  for (char32_t c = 0x400; c <= 0x40F; ++c) CHECK(SimpleToLower(c) == c + 0x50);
  // Beyond the required blocks: Armenian, Georgian Mtavruli, Deseret.
  CHECK(SimpleToUpper(0x561) == 0x531);
  CHECK(SimpleToLower(0x1C90) == 0x10D0);
  CHECK(SimpleToLower(0x10400) == 0x10428);
  CHECK(IsLetter(U'a'));
  CHECK(IsLetter(0x4E00));  // CJK
  CHECK_FALSE(IsLetter(U'1'));
  CHECK(IsDigit(0x661));
  CHECK_FALSE(IsDigit(0x2160));  // ROMAN NUMERAL ONE is Nl, not Nd
  CHECK_FALSE(IsLetter(0x20AC));
  std::string out;
  CHECK_FALSE(ToLowerGo("abc", out));
  CHECK_FALSE(ToUpperGo("ABC\xC3\x84", out));
  CHECK(out.empty());
  CHECK(ToUpperGo("\xEF\xBF\xBD\xff",
                  out));  // a real U+FFFD stays, 0xFF becomes one
  CHECK(out == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

std::array<uint8_t, 16> OpenSslMd5(const std::string& s) {
  std::array<uint8_t, 16> out{};
  unsigned int len = 0;
  REQUIRE(EVP_Digest(s.data(), s.size(), out.data(), &len, EVP_md5(),
                     nullptr) == 1);
  REQUIRE(len == 16);
  return out;
}

TEST_CASE("md5: matches OpenSSL at every padding boundary",
          "[relabel][internals]") {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 300; ++n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    INFO("length " << n);
    CHECK(Md5(s) == OpenSslMd5(s));
  }
  std::string big(100000, 'x');
  CHECK(Md5(big) == OpenSslMd5(big));
  CHECK(Md5Low64BigEndian("baz") % 1000 == 976);
  CHECK(Md5Low64BigEndian("foo\nbar") % 1000 == 734);
}

TEST_CASE("LabelBuilder: reset, get, set, delete, result",
          "[relabel][builder]") {
  LabelBuilder b;
  std::vector<Label> in = {
      {"c", "3"}, {"a", "1"}, {"b", "2"}, {"a", "dup"}, {"e", ""}};
  b.Reset(in);
  CHECK(b.Get("a") == "1");  // first of a repeated name
  CHECK(b.Get("e") == "");
  CHECK(b.Get("zz") == "");
  {
    std::string name = "d", value = "4";
    b.Set(name, value);  // copies
    name[0] = 'X';
    value[0] = 'X';
  }
  CHECK(b.Get("d") == "4");
  b.Set("a", "11");
  b.Set("a", "12");
  b.Delete("b");
  b.Set("c", "");
  auto out = b.Result();
  std::vector<Label> want = {{"a", "12"}, {"d", "4"}};
  CHECK(std::vector<Label>(out.begin(), out.end()) == want);
  b.Set("b", "back");
  out = b.Result();
  want = {{"a", "12"}, {"b", "back"}, {"d", "4"}};
  CHECK(std::vector<Label>(out.begin(), out.end()) == want);
  // Reuse: nothing leaks from the previous series.
  std::vector<Label> in2 = {{"x", "1"}};
  b.Reset(in2);
  out = b.Result();
  CHECK(std::vector<Label>(out.begin(), out.end()) == in2);
  CHECK(b.Get("a") == "");
  // Large values spill into extra arena blocks and stay intact.
  std::string big(20000, 'v');
  b.Set("big", big);
  b.Set("big2", big + "2");
  CHECK(b.Get("big") == big);
  CHECK(b.Get("big2") == big + "2");
  // Moved-from and moved-to builders keep working.
  LabelBuilder moved = std::move(b);
  CHECK(moved.Get("big") == big);
  // Many unsorted labels (stable_sort path).
  std::vector<std::string> names;
  for (int i = 0; i < 100; ++i)
    names.push_back("n" + std::to_string((i * 37) % 100));
  std::vector<Label> many;
  for (const auto& n : names) many.push_back({n, "v"});
  moved.Reset(many);
  out = moved.Result();
  REQUIRE(out.size() == 100);
  for (size_t i = 1; i < out.size(); ++i) CHECK(out[i - 1].name < out[i].name);
}

TEST_CASE("RuleSet: concurrent Apply from several threads",
          "[relabel][builder]") {
  using testing::R;
  RuleSet rs = testing::MustCompile(
      {R().src({"job"}).re("(.*)-(\\d+)").target("shard").repl("$2"),
       R().src({"job"}).target("up").action("uppercase"),
       R().re("drop_.*").action("labeldrop")});
  auto work = [&rs](int seed, int* failures) {
    LabelBuilder b;
    for (int i = 0; i < 2000; ++i) {
      std::string job = "job" + std::to_string(seed) + "-" + std::to_string(i);
      std::vector<Label> in = {{"job", job}, {"drop_me", "x"}};
      b.Reset(in);
      if (!rs.Apply(b) || b.Get("shard") != std::to_string(i) ||
          b.Result().size() != 3)
        ++*failures;
    }
  };
  int f1 = 0, f2 = 0;
  std::thread t1(work, 1, &f1), t2(work, 2, &f2);
  t1.join();
  t2.join();
  CHECK(f1 == 0);
  CHECK(f2 == 0);
}

}  // namespace
}  // namespace promrelay::relabel::internal
