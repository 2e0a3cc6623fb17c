#include "proxy/relabel/regex.h"

#include <cctype>
#include <cstring>

#include "proxy/relabel/strings.h"
#include "proxy/relabel/unicode.h"
#include "re2/re2.h"

namespace promrelay::relabel::internal {
namespace {

// Go's regexp/syntax error texts, so messages read like Prometheus's.
const char* GoErrorText(RE2::ErrorCode code) {
  switch (code) {
    case RE2::ErrorBadEscape:
      return "invalid escape sequence";
    case RE2::ErrorBadCharClass:
      return "invalid character class";
    case RE2::ErrorBadCharRange:
      return "invalid character class range";
    case RE2::ErrorMissingBracket:
      return "missing closing ]";
    case RE2::ErrorMissingParen:
      return "missing closing )";
    case RE2::ErrorUnexpectedParen:
      return "unexpected )";
    case RE2::ErrorTrailingBackslash:
      return "trailing backslash at end of expression";
    case RE2::ErrorRepeatArgument:
      return "missing argument to repetition operator";
    case RE2::ErrorRepeatSize:
      return "invalid repeat count";
    case RE2::ErrorRepeatOp:
      return "invalid nested repetition operator";
    case RE2::ErrorBadPerlOp:
      return "invalid or unsupported Perl syntax";
    case RE2::ErrorBadUTF8:
      return "invalid UTF-8";
    case RE2::ErrorBadNamedCapture:
      return "invalid named capture";
    case RE2::ErrorPatternTooLarge:
      return "expression too large";
    default:
      return "internal error";
  }
}

absl::Status ParseError(std::string_view what, std::string_view where) {
  return absl::InvalidArgumentError(
      Concat("error parsing regexp: ", what, ": `", where, "`"));
}

// Go's isValidCaptureName: ASCII letters, digits and `_`, non-empty.
bool IsValidCaptureName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c != '_' && !std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

RE2::Options Re2Options() {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_encoding(RE2::Options::EncodingUTF8);
  o.set_longest_match(false);  // leftmost-first, like Go
  // RE2's default budget (program plus lazily built DFA states, per regex).
  // Go has no such cap, but a proxy with a 64 MiB RSS target and dozens of
  // rules cannot give each regex more; a pattern that needs more fails to
  // compile ("expression too large") instead of growing without bound.
  o.set_max_mem(8 << 20);
  return o;
}

// One alternative of a pattern made of literal characters and `.*`/`.+`
// tokens, or nullopt-equivalent false when it is anything else.
struct Token {
  enum Type { kLit, kDotStar, kDotPlus, kGroupStar, kGroupPlus } type;
  std::string lit;
  bool is_var() const { return type != kLit; }
};

bool IsQuantifier(char c) {
  return c == '?' || c == '*' || c == '+' || c == '{';
}

bool IsAsciiPunct(unsigned char c) { return c < 0x80 && std::ispunct(c); }

// Tokenizes one alternative. A leading `^` and a trailing `$` are dropped:
// inside `^(?s:...)$` they cannot change the result.
bool Tokenize(std::string_view alt, std::vector<Token>& out) {
  out.clear();
  size_t i = 0;
  if (!alt.empty() && alt[0] == '^') i = 1;
  size_t end = alt.size();
  if (end > i && alt[end - 1] == '$') {
    // Only if that `$` is not escaped (count the backslashes before it).
    size_t k = end - 1, slashes = 0;
    while (k > i && alt[k - 1] == '\\') {
      --k;
      ++slashes;
    }
    if (slashes % 2 == 0) --end;
  }
  auto add_char = [&out](char c) {
    if (out.empty() || out.back().type != Token::kLit) {
      out.push_back({Token::kLit, {}});
    }
    out.back().lit.push_back(c);
  };
  while (i < end) {
    unsigned char c = static_cast<unsigned char>(alt[i]);
    if (c == '\\') {
      if (i + 1 >= end) return false;
      unsigned char d = static_cast<unsigned char>(alt[i + 1]);
      if (!IsAsciiPunct(d)) return false;
      add_char(static_cast<char>(d));
      i += 2;
      continue;
    }
    if (c == '.') {
      if (i + 1 < end && (alt[i + 1] == '*' || alt[i + 1] == '+')) {
        // `.*?` and friends: not handled here.
        if (i + 2 < end && IsQuantifier(alt[i + 2])) return false;
        out.push_back(
            {alt[i + 1] == '*' ? Token::kDotStar : Token::kDotPlus, {}});
        i += 2;
        continue;
      }
      return false;
    }
    if (c == '(') {
      std::string_view g = alt.substr(i, 4);
      if ((g == "(.*)" || g == "(.+)") &&
          (i + 4 >= end || !IsQuantifier(alt[i + 4]))) {
        out.push_back(
            {g == "(.*)" ? Token::kGroupStar : Token::kGroupPlus, {}});
        i += 4;
        continue;
      }
      return false;
    }
    if (std::strchr("+*?()[]{}^$|", c) != nullptr && c != 0) return false;
    add_char(static_cast<char>(c));
    ++i;
  }
  for (const Token& t : out) {
    // U+FFFD in a literal would match an invalid input byte under Go's
    // decoding; leave such patterns to RE2 (which sees sanitized input).
    if (t.type == Token::kLit &&
        t.lit.find("\xEF\xBF\xBD") != std::string::npos) {
      return false;
    }
  }
  return true;
}

// Splits on `|` that is not escaped. Only meaningful for patterns without
// groups or classes, which Tokenize rejects anyway.
std::vector<std::string_view> SplitAlternatives(std::string_view p) {
  std::vector<std::string_view> alts;
  size_t start = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] == '|') {
      alts.push_back(p.substr(start, i - start));
      start = i + 1;
    }
  }
  alts.push_back(p.substr(start));
  return alts;
}

}  // namespace

absl::StatusOr<std::string> RewriteForRe2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 8);
  const size_t n = p.size();
  size_t i = 0;
  while (i < n) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= n) {
        out.push_back(c);  // RE2 reports the trailing backslash
        ++i;
        continue;
      }
      char d = p[i + 1];
      if (d == 'Q') {
        // \Q...\E is literal text; without \E it runs to the end (and, as
        // in Go, swallows the closing of the anchoring group).
        size_t e = p.find("\\E", i + 2);
        size_t stop = e == std::string_view::npos ? n : e + 2;
        out.append(p.substr(i, stop - i));
        i = stop;
        continue;
      }
      if (d == 'C') return ParseError("invalid escape sequence", "\\C");
      out.push_back(c);
      out.push_back(d);
      i += 2;
      continue;
    }
    if (c == '[') {
      out.push_back(c);
      ++i;
      if (i < n && p[i] == '^') out.push_back(p[i++]);
      if (i < n && p[i] == ']') out.push_back(p[i++]);  // literal ]
      while (i < n && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < n) {
          if (p[i + 1] == 'C')
            return ParseError("invalid escape sequence", "\\C");
          out.append(p.substr(i, 2));
          i += 2;
          continue;
        }
        if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
          size_t e = p.find(":]", i + 2);
          if (e != std::string_view::npos) {
            out.append(p.substr(i, e + 2 - i));
            i = e + 2;
            continue;
          }
        }
        out.push_back(p[i++]);
      }
      continue;  // the closing ] (if any) is copied by the outer loop
    }
    if (c == '(' && p.substr(i, 3) == "(?<") {
      size_t e = p.find('>', i + 3);
      if (e == std::string_view::npos) {
        return ParseError("invalid named capture", p.substr(i));
      }
      std::string_view name = p.substr(i + 3, e - i - 3);
      if (!IsValidCaptureName(name)) {
        return ParseError("invalid named capture", p.substr(i, e + 1 - i));
      }
      out.append("(?P<");
      i += 3;
      continue;
    }
    if (c == '(' && p.substr(i, 4) == "(?P<") {
      size_t e = p.find('>', i + 4);
      if (e != std::string_view::npos &&
          !IsValidCaptureName(p.substr(i + 4, e - i - 4))) {
        return ParseError("invalid named capture", p.substr(i, e + 1 - i));
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

Regex::Regex() = default;
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

absl::StatusOr<Regex> Regex::Compile(std::string_view pattern,
                                     bool allow_fast_paths) {
  absl::StatusOr<std::string> rewritten = RewriteForRe2(pattern);
  if (!rewritten.ok()) return rewritten.status();
  Regex r;
  r.pattern_ = std::string(pattern);
  std::string anchored = Concat("^(?s:", *rewritten, ")$");
  r.re_ = std::make_unique<RE2>(anchored, Re2Options());
  if (!r.re_->ok()) {
    // Prefer the error of the pattern as written: its position text is what
    // the user typed, not our anchoring wrapper.
    RE2 raw(*rewritten, Re2Options());
    const RE2& bad = raw.ok() ? *r.re_ : raw;
    return ParseError(GoErrorText(bad.error_code()), bad.error_arg());
  }
  r.num_groups_ = r.re_->NumberOfCapturingGroups();
  r.names_ = r.re_->CapturingGroupNames();
  if (!allow_fast_paths) return r;

  std::string_view p = *rewritten;
  std::vector<std::string_view> alts = SplitAlternatives(p);
  std::vector<Token> tokens;
  if (alts.size() == 1) {
    if (!Tokenize(alts[0], tokens)) return r;
    size_t vars = 0, var_at = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].is_var()) {
        ++vars;
        var_at = i;
      }
    }
    auto lit_at = [&](size_t i) -> std::string {
      return i < tokens.size() && !tokens[i].is_var() ? tokens[i].lit : "";
    };
    if (vars == 0) {
      r.kind_ = Kind::kLiterals;
      r.literals_.push_back(lit_at(0));
      r.min_literal_len_ = r.max_literal_len_ = r.literals_[0].size();
    } else if (vars == 1) {
      // [prefix] var [suffix]: the split is unique, so the one group (if
      // any) is simply the middle.
      r.kind_ = Kind::kAffix;
      r.prefix_ = var_at > 0 ? lit_at(0) : "";
      r.suffix_ = lit_at(var_at + 1);
      Token::Type t = tokens[var_at].type;
      r.middle_min_ = (t == Token::kDotPlus || t == Token::kGroupPlus) ? 1 : 0;
    } else if (tokens.size() == 3 && tokens[0].type == Token::kDotStar &&
               !tokens[1].is_var() && tokens[2].type == Token::kDotStar) {
      r.kind_ = Kind::kContains;
      r.literals_.push_back(tokens[1].lit);
    }
    return r;
  }
  std::vector<std::string> lits;
  for (std::string_view alt : alts) {
    if (!Tokenize(alt, tokens)) return r;
    if (tokens.size() > 1 ||
        (tokens.size() == 1 && tokens[0].type != Token::kLit)) {
      return r;
    }
    lits.push_back(tokens.empty() ? std::string() : tokens[0].lit);
  }
  r.kind_ = Kind::kLiterals;
  r.literals_ = std::move(lits);
  r.min_literal_len_ = SIZE_MAX;
  for (const std::string& l : r.literals_) {
    r.min_literal_len_ = std::min(r.min_literal_len_, l.size());
    r.max_literal_len_ = std::max(r.max_literal_len_, l.size());
  }
  if (r.literals_.size() > 8) {
    for (const std::string& l : r.literals_) r.literal_set_.insert(l);
  }
  return r;
}

bool Regex::MatchLiteral(std::string_view s) const {
  if (s.size() < min_literal_len_ || s.size() > max_literal_len_) return false;
  if (!literal_set_.empty()) return literal_set_.contains(s);
  for (const std::string& l : literals_) {
    if (std::string_view(l) == s) return true;
  }
  return false;
}

bool Regex::Match(std::string_view s, MatchScratch& scratch) const {
  switch (kind_) {
    case Kind::kLiterals:
      return MatchLiteral(s);
    case Kind::kAffix:
      return s.size() >= prefix_.size() + suffix_.size() + middle_min_ &&
             s.starts_with(prefix_) && s.ends_with(suffix_);
    case Kind::kContains:
      return s.find(literals_[0]) != std::string_view::npos;
    case Kind::kRe2:
      break;
  }
  return MatchRe2(s, 0, nullptr, scratch);
}

bool Regex::MatchGroups(std::string_view s, int n, Group* groups,
                        MatchScratch& scratch) const {
  // Empty participating groups must not look like absent ones.
  if (s.data() == nullptr) s = std::string_view("", 0);
  if (kind_ != Kind::kRe2) {
    if (!Match(s, scratch)) return false;
    groups[0] = s;
    // Only an affix pattern can have a group: `(.*)` or `(.+)` in the middle.
    if (n >= 1) {
      groups[1] =
          s.substr(prefix_.size(), s.size() - prefix_.size() - suffix_.size());
    }
    return true;
  }
  return MatchRe2(s, n, groups, scratch);
}

bool Regex::MatchRe2(std::string_view s, int n, Group* groups,
                     MatchScratch& scratch) const {
  std::string_view text = s;
  bool sanitized = false;
  if (!IsValidUtf8(s)) {
    // Go decodes each invalid byte as U+FFFD and matches on that; RE2 would
    // not match `.` there. Match a copy where each invalid byte is U+FFFD
    // and map the submatch offsets back.
    sanitized = true;
    scratch.sanitized.clear();
    scratch.offsets.clear();
    for (size_t i = 0; i < s.size();) {
      DecodedRune d = DecodeRune(s.substr(i));
      size_t before = scratch.sanitized.size();
      if (d.rune == kRuneError && d.width == 1) {
        scratch.sanitized.append("\xEF\xBF\xBD");
      } else {
        scratch.sanitized.append(s.substr(i, d.width));
      }
      for (size_t k = before; k < scratch.sanitized.size(); ++k) {
        scratch.offsets.push_back(static_cast<uint32_t>(i));
      }
      i += d.width;
    }
    scratch.offsets.push_back(static_cast<uint32_t>(s.size()));
    text = scratch.sanitized;
  }
  re2::StringPiece piece(text.data(), text.size());
  if (n == 0) {
    if (!re_->Match(piece, 0, piece.size(), RE2::ANCHOR_BOTH, nullptr, 0)) {
      return false;
    }
    if (groups != nullptr) groups[0] = s;
    return true;
  }
  if (scratch.subs.size() < static_cast<size_t>(n + 1)) {
    scratch.subs.resize(n + 1);
  }
  re2::StringPiece* subs = scratch.subs.data();
  if (!re_->Match(piece, 0, piece.size(), RE2::ANCHOR_BOTH, subs, n + 1)) {
    return false;
  }
  for (int i = 0; i <= n; ++i) {
    if (subs[i].data() == nullptr) {
      groups[i] = Group();
      continue;
    }
    size_t b = subs[i].data() - text.data();
    size_t e = b + subs[i].size();
    if (sanitized) {
      b = scratch.offsets[b];
      e = scratch.offsets[e];
    }
    groups[i] = s.substr(b, e - b);
  }
  return true;
}

}  // namespace promrelay::relabel::internal
