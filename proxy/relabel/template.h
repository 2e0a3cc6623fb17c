// `$` templates of Go's Regexp.Expand, parsed once at rule compile time.
#ifndef PROMRELAY_PROXY_RELABEL_TEMPLATE_H_
#define PROMRELAY_PROXY_RELABEL_TEMPLATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace promrelay::relabel::internal {

// A submatch: `data() == nullptr` means the group did not take part.
using Group = std::string_view;

class Template {
 public:
  Template() = default;

  // Parses `text` with Go's rules: `$$` is `$`; `$name` takes the longest run
  // of Unicode letters, digits and `_`; `${name}` the text between braces; a
  // name of digits only (no leading zero unless "0", below 1e8) is a group
  // number, anything else a group name; a `$` that starts no well-formed
  // reference is literal. `num_groups` and `names` (index -> name, as
  // RE2::CapturingGroupNames gives it) describe the regex; references to
  // groups that do not exist expand to "" and are dropped here.
  static Template Parse(std::string_view text, int num_groups,
                        const std::map<int, std::string>& names);

  // True when the template has no group reference; it then always expands
  // to literal().
  bool is_literal() const { return refs_ == 0; }
  const std::string& literal() const { return text_; }
  // The highest group index referenced; 0 when only $0 or nothing is.
  int max_group() const { return max_group_; }
  // When the template is exactly one reference with one candidate group
  // (such as "$1" or "${name}"), that group index; else -1.
  int single_group() const { return single_group_; }

  // Appends the expansion to `out`. `groups` has one entry per group index
  // (0 = whole match) up to at least max_group().
  void Expand(const Group* groups, std::string& out) const;
  // The length Expand would append.
  size_t ExpandedSize(const Group* groups) const;

 private:
  struct Piece {
    uint32_t offset = 0;  // literal bytes in text_ ...
    uint32_t length = 0;
    int32_t cand_begin = 0;  // ... or candidate groups in candidates_
    int32_t cand_end = 0;
  };
  const Group* Pick(const Piece& p, const Group* groups) const;

  std::string text_;  // all literal bytes, concatenated
  std::vector<Piece> pieces_;
  std::vector<int> candidates_;
  int refs_ = 0;
  int max_group_ = 0;
  int single_group_ = -1;
};

}  // namespace promrelay::relabel::internal

#endif  // PROMRELAY_PROXY_RELABEL_TEMPLATE_H_
