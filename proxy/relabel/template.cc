#include "proxy/relabel/template.h"

#include "proxy/relabel/unicode.h"

namespace promrelay::relabel::internal {
namespace {

struct Reference {
  bool ok = false;
  std::string_view name;
  int64_t num = -1;     // -1: a name, not a number
  size_t consumed = 0;  // bytes after the `$`
};

// Go's regexp extract(): parses the reference after a `$`.
Reference Extract(std::string_view s) {
  Reference ref;
  if (s.empty()) return ref;
  size_t start = 0;
  bool brace = false;
  if (s[0] == '{') {
    brace = true;
    start = 1;
  }
  size_t i = start;
  while (i < s.size()) {
    DecodedRune d = DecodeRune(s.substr(i));
    if (!IsLetter(d.rune) && !IsDigit(d.rune) && d.rune != '_') break;
    i += d.width;
  }
  if (i == start) return ref;  // empty name
  ref.name = s.substr(start, i - start);
  if (brace) {
    if (i >= s.size() || s[i] != '}') return ref;  // missing closing brace
    ++i;
  }
  int64_t num = 0;
  for (char c : ref.name) {
    if (c < '0' || c > '9' || num >= 100000000) {
      num = -1;
      break;
    }
    num = num * 10 + (c - '0');
  }
  if (ref.name[0] == '0' && ref.name.size() > 1) num = -1;
  ref.num = num;
  ref.consumed = i;
  ref.ok = true;
  return ref;
}

}  // namespace

Template Template::Parse(std::string_view text, int num_groups,
                         const std::map<int, std::string>& names) {
  Template t;
  auto add_literal = [&t](std::string_view lit) {
    if (lit.empty()) return;
    if (!t.pieces_.empty() &&
        t.pieces_.back().cand_begin == t.pieces_.back().cand_end) {
      t.pieces_.back().length += lit.size();
    } else {
      Piece p;
      p.offset = static_cast<uint32_t>(t.text_.size());
      p.length = static_cast<uint32_t>(lit.size());
      t.pieces_.push_back(p);
    }
    t.text_.append(lit);
  };
  while (!text.empty()) {
    size_t dollar = text.find('$');
    if (dollar == std::string_view::npos) break;
    add_literal(text.substr(0, dollar));
    text.remove_prefix(dollar + 1);
    if (!text.empty() && text[0] == '$') {
      add_literal("$");
      text.remove_prefix(1);
      continue;
    }
    Reference ref = Extract(text);
    if (!ref.ok) {
      add_literal("$");  // malformed: the `$` is literal text
      continue;
    }
    text.remove_prefix(ref.consumed);
    Piece p;
    p.cand_begin = static_cast<int32_t>(t.candidates_.size());
    if (ref.num >= 0) {
      if (ref.num <= num_groups)
        t.candidates_.push_back(static_cast<int>(ref.num));
    } else {
      for (const auto& [index, name] : names) {
        if (name == ref.name) t.candidates_.push_back(index);
      }
    }
    p.cand_end = static_cast<int32_t>(t.candidates_.size());
    if (p.cand_begin == p.cand_end) continue;  // always expands to ""
    for (int32_t i = p.cand_begin; i < p.cand_end; ++i) {
      if (t.candidates_[i] > t.max_group_) t.max_group_ = t.candidates_[i];
    }
    t.pieces_.push_back(p);
    ++t.refs_;
  }
  add_literal(text);
  if (t.pieces_.size() == 1 && t.refs_ == 1 &&
      t.pieces_[0].cand_end - t.pieces_[0].cand_begin == 1) {
    t.single_group_ = t.candidates_[t.pieces_[0].cand_begin];
  }
  return t;
}

const Group* Template::Pick(const Piece& p, const Group* groups) const {
  // Go takes the first group of that name that took part in the match.
  for (int32_t i = p.cand_begin; i < p.cand_end; ++i) {
    const Group& g = groups[candidates_[i]];
    if (g.data() != nullptr) return &g;
  }
  return nullptr;
}

size_t Template::ExpandedSize(const Group* groups) const {
  size_t n = 0;
  for (const Piece& p : pieces_) {
    if (p.cand_begin == p.cand_end) {
      n += p.length;
    } else if (const Group* g = Pick(p, groups)) {
      n += g->size();
    }
  }
  return n;
}

void Template::Expand(const Group* groups, std::string& out) const {
  for (const Piece& p : pieces_) {
    if (p.cand_begin == p.cand_end) {
      out.append(text_, p.offset, p.length);
    } else if (const Group* g = Pick(p, groups)) {
      out.append(g->data(), g->size());
    }
  }
}

}  // namespace promrelay::relabel::internal
