// Relabel regexes: Go/Prometheus semantics on top of RE2, with fast paths
// for the shapes real configs use (match-all, literal alternations, literal
// prefix/suffix/substring). Every fast path gives exactly the RE2 result.
#ifndef PROMRELAY_PROXY_RELABEL_REGEX_H_
#define PROMRELAY_PROXY_RELABEL_REGEX_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "proxy/relabel/template.h"
#include "re2/stringpiece.h"

namespace re2 {
class RE2;
}

namespace promrelay::relabel::internal {

// Per-thread buffers for matching; reused so matching does not allocate.
struct MatchScratch {
  std::vector<Group> groups;
  std::string sanitized;
  std::vector<uint32_t> offsets;
  std::vector<re2::StringPiece> subs;
};

class Regex {
 public:
  enum class Kind {
    kLiterals,  // a|b|c of plain literals (possibly one, possibly empty)
    kAffix,     // [prefix] one of .* .+ (.*) (.+) [suffix]
    kContains,  // .*lit.*
    kRe2,
  };

  Regex();
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Compiles `pattern` the way Prometheus does: `(?<name>` is accepted as
  // `(?P<name>`, then `^(?s:pattern)$` is compiled. The error text follows
  // Go: "error parsing regexp: <what>: `<where>`". With `allow_fast_paths`
  // false every match goes through RE2 (tests compare both).
  static absl::StatusOr<Regex> Compile(std::string_view pattern,
                                       bool allow_fast_paths = true);

  // Full match, no submatches.
  bool Match(std::string_view s, MatchScratch& scratch) const;
  // Full match filling groups[0..n] (group 0 is `s` itself); entries of
  // groups that did not take part have data() == nullptr. `groups` must
  // have room for n + 1 entries; n <= num_groups().
  bool MatchGroups(std::string_view s, int n, Group* groups,
                   MatchScratch& scratch) const;

  int num_groups() const { return num_groups_; }
  const std::map<int, std::string>& group_names() const { return names_; }
  Kind kind() const { return kind_; }
  // For kLiterals: the alternatives.
  const std::vector<std::string>& literals() const { return literals_; }
  // For kAffix: the literal text before and after the variable part.
  const std::string& prefix() const { return prefix_; }
  const std::string& suffix() const { return suffix_; }
  // The pattern as written.
  const std::string& pattern() const { return pattern_; }

 private:
  bool MatchRe2(std::string_view s, int n, Group* groups,
                MatchScratch& scratch) const;
  bool MatchLiteral(std::string_view s) const;

  std::string pattern_;
  Kind kind_ = Kind::kRe2;
  int num_groups_ = 0;
  std::map<int, std::string> names_;
  std::vector<std::string> literals_;  // kLiterals; or the one literal
  absl::flat_hash_set<std::string_view> literal_set_;  // many literals
  size_t min_literal_len_ = 0, max_literal_len_ = 0;
  std::string prefix_, suffix_;  // kAffix
  size_t middle_min_ = 0;        // kAffix: 1 for .+
  std::unique_ptr<re2::RE2> re_;
};

// Rewrites `(?<name>` to `(?P<name>` outside character classes and escapes,
// and rejects what Go rejects but RE2 accepts (`\C`, non-ASCII group
// names). Exposed for tests.
absl::StatusOr<std::string> RewriteForRe2(std::string_view pattern);

}  // namespace promrelay::relabel::internal

#endif  // PROMRELAY_PROXY_RELABEL_REGEX_H_
