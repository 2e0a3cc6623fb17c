#include "proxy/relabel/relabel.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "absl/strings/str_format.h"
#include "proxy/relabel/md5.h"
#include "proxy/relabel/regex.h"
#include "proxy/relabel/strings.h"
#include "proxy/relabel/template.h"
#include "proxy/relabel/unicode.h"
#include "re2/re2.h"

namespace promrelay::relabel {

using internal::Concat;
using internal::Group;
using internal::Regex;
using internal::Template;

namespace {

enum class Action {
  kReplace,
  kKeep,
  kDrop,
  kKeepEqual,
  kDropEqual,
  kHashMod,
  kLabelMap,
  kLabelDrop,
  kLabelKeep,
  kLowercase,
  kUppercase,
};

struct ActionName {
  std::string_view name;
  Action action;
};
constexpr ActionName kActions[] = {
    {"replace", Action::kReplace},     {"keep", Action::kKeep},
    {"drop", Action::kDrop},           {"keepequal", Action::kKeepEqual},
    {"dropequal", Action::kDropEqual}, {"hashmod", Action::kHashMod},
    {"labelmap", Action::kLabelMap},   {"labeldrop", Action::kLabelDrop},
    {"labelkeep", Action::kLabelKeep}, {"lowercase", Action::kLowercase},
    {"uppercase", Action::kUppercase},
};

std::string_view NameOf(Action a) {
  for (const ActionName& n : kActions) {
    if (n.action == a) return n.name;
  }
  return "?";
}

constexpr std::string_view kDefaultSeparator = ";";
constexpr std::string_view kDefaultRegex = "(.*)";
constexpr std::string_view kDefaultReplacement = "$1";

// Go's %q, close enough for error messages: printable text as is, control
// characters and invalid UTF-8 bytes escaped.
std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    internal::DecodedRune d = internal::DecodeRune(s.substr(i));
    if (d.rune == internal::kRuneError && d.width == 1) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(s[i]));
    } else if (d.rune == '"' || d.rune == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(d.rune));
    } else if (d.rune == '\n') {
      out.append("\\n");
    } else if (d.rune == '\t') {
      out.append("\\t");
    } else if (d.rune == '\r') {
      out.append("\\r");
    } else if (d.rune < 0x20 || d.rune == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned>(d.rune));
    } else if (d.rune >= 0x80 && d.rune < 0xA0) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned>(d.rune));
    } else {
      out.append(s.substr(i, d.width));
    }
    i += d.width;
  }
  out.push_back('"');
  return out;
}

bool IsLegacyName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Prometheus's relabelTargetLegacy: a legacy name in which `$name` and
// `${name}` references may stand for characters.
bool IsLegacyTemplateName(std::string_view s) {
  static const RE2* const re = [] {
    RE2::Options o;
    o.set_log_errors(false);
    return new RE2(R"(^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$)", o);
  }();
  return RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *re);
}

// Prometheus's isValidLabelNameWithRegexVarFn.
bool IsValidTemplateName(std::string_view s, NameScheme scheme) {
  if (scheme == NameScheme::kUtf8) return IsValidLabelName(s, scheme);
  return IsLegacyTemplateName(s);
}

std::string_view MessageOf(const absl::Status& status) {
  return std::string_view(status.message().data(), status.message().size());
}

absl::Status FieldError(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(Concat(field, ": ", why));
}

// A bump allocator for values and names that rules compute. Reset() keeps
// the blocks, so a builder reaches a steady state with no allocation.
class Arena {
 public:
  char* Alloc(size_t n) {
    while (cur_ < blocks_.size()) {
      Block& b = blocks_[cur_];
      if (b.size - used_ >= n) {
        char* p = b.data.get() + used_;
        used_ += n;
        return p;
      }
      ++cur_;
      used_ = 0;
    }
    size_t size = std::max<size_t>(kBlockSize, n);
    blocks_.push_back({std::make_unique<char[]>(size), size});
    cur_ = blocks_.size() - 1;
    used_ = n;
    return blocks_.back().data.get();
  }
  std::string_view Copy(std::string_view s) {
    if (s.empty()) return {};
    char* p = Alloc(s.size());
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
  }
  void Reset() {
    // Give back blocks that an unusually large series made us grow.
    while (blocks_.size() > 1 && blocks_.back().size > kBlockSize) {
      blocks_.pop_back();
    }
    cur_ = 0;
    used_ = 0;
  }

 private:
  static constexpr size_t kBlockSize = 4096;
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size;
  };
  std::vector<Block> blocks_;
  size_t cur_ = 0;
  size_t used_ = 0;
};

// Byte-wise three-way compare. Label names are short and usually differ
// early, so an inlined loop beats a call to memcmp.
inline int CompareNames(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  const auto* pa = reinterpret_cast<const unsigned char*>(a.data());
  const auto* pb = reinterpret_cast<const unsigned char*>(b.data());
  for (size_t i = 0; i < n; ++i) {
    if (pa[i] != pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

inline bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CompareNames(a, b) == 0;
}

bool NameLess(const Label& a, const Label& b) {
  return CompareNames(a.name, b.name) < 0;
}

}  // namespace

bool IsValidUtf8(std::string_view s) { return internal::IsValidUtf8(s); }

bool IsValidLabelName(std::string_view name, NameScheme scheme) {
  if (scheme == NameScheme::kLegacy) return IsLegacyName(name);
  return !name.empty() && internal::IsValidUtf8(name);
}

// ---------------------------------------------------------------------------
// LabelBuilder
//
// Mirrors Go's labels.Builder so that labelmap visits labels in the same
// order: `base` is the input (sorted), `add` the labels rules wrote, in
// write order. A base label that a rule set or deleted is "touched" and is
// hidden for good (Go keeps it in `del` or shadows it with `add`).

struct LabelBuilder::State {
  struct BaseEntry {
    Label label;
    bool touched;
  };
  std::vector<BaseEntry> base;
  size_t base_live = 0;
  std::vector<Label> add;

  std::vector<Label> result;
  bool result_valid = false;

  Arena arena;
  std::vector<Label> visit;   // labelmap/labeldrop/labelkeep snapshot
  std::string join;           // joined source values
  std::string scratch;        // template expansion, case mapping
  std::string name_scratch;   // expanded replace target
  std::vector<Group> groups;  // submatches
  internal::MatchScratch match;

  size_t live() const { return base_live + add.size(); }

  BaseEntry* FindBase(std::string_view name) {
    size_t lo = 0, hi = base.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      int c = CompareNames(base[mid].label.name, name);
      if (c == 0) return &base[mid];
      if (c < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return nullptr;
  }

  std::string_view Get(std::string_view name) {
    for (const Label& a : add) {
      if (SameName(a.name, name)) return a.value;
    }
    BaseEntry* e = FindBase(name);
    if (e != nullptr && !e->touched) return e->label.value;
    return {};
  }

  void Touch(std::string_view name) {
    BaseEntry* e = FindBase(name);
    if (e != nullptr && !e->touched) {
      e->touched = true;
      --base_live;
    }
  }

  // `name` and `value` must stay valid until Reset(); `value` is non-empty.
  void SetStable(std::string_view name, std::string_view value) {
    result_valid = false;
    for (Label& a : add) {
      if (SameName(a.name, name)) {
        a.value = value;
        return;
      }
    }
    add.push_back({name, value});
    Touch(name);
  }

  void Del(std::string_view name) {
    result_valid = false;
    for (auto it = add.begin(); it != add.end(); ++it) {
      if (SameName(it->name, name)) {
        add.erase(it);
        break;
      }
    }
    Touch(name);
  }

  void Snapshot() {
    visit.clear();
    for (const BaseEntry& e : base) {
      if (!e.touched) visit.push_back(e.label);
    }
    visit.insert(visit.end(), add.begin(), add.end());
  }

  Group* GroupsFor(int n) {
    if (groups.size() < static_cast<size_t>(n + 1)) groups.resize(n + 1);
    return groups.data();
  }
};

LabelBuilder::LabelBuilder() : state_(std::make_unique<State>()) {}
LabelBuilder::~LabelBuilder() = default;
LabelBuilder::LabelBuilder(LabelBuilder&&) noexcept = default;
LabelBuilder& LabelBuilder::operator=(LabelBuilder&&) noexcept = default;

void LabelBuilder::Reset(absl::Span<const Label> input) {
  State& s = *state_;
  s.base.clear();
  s.add.clear();
  s.arena.Reset();
  s.result_valid = false;
  // An empty value is the same as an absent label. Senders sort labels, so
  // check for strictly increasing names while copying and sort only if not.
  s.base.resize(input.size());
  size_t n = 0;
  bool strictly_sorted = true;
  for (const Label& l : input) {
    if (l.value.empty()) continue;
    if (n > 0 && strictly_sorted &&
        CompareNames(s.base[n - 1].label.name, l.name) >= 0) {
      strictly_sorted = false;
    }
    s.base[n++] = {l, false};
  }
  s.base.resize(n);
  if (!strictly_sorted) {
    auto less = [](const State::BaseEntry& a, const State::BaseEntry& b) {
      return CompareNames(a.label.name, b.label.name) < 0;
    };
    if (n <= 32) {
      // Stable insertion sort: no allocation for the usual small sets.
      for (size_t i = 1; i < n; ++i) {
        State::BaseEntry e = s.base[i];
        size_t j = i;
        for (; j > 0 && less(e, s.base[j - 1]); --j) s.base[j] = s.base[j - 1];
        s.base[j] = e;
      }
    } else {
      std::stable_sort(s.base.begin(), s.base.end(), less);
    }
    // A repeated name keeps its first value (a label set is a map).
    auto same = [](const State::BaseEntry& a, const State::BaseEntry& b) {
      return SameName(a.label.name, b.label.name);
    };
    s.base.erase(std::unique(s.base.begin(), s.base.end(), same), s.base.end());
  }
  s.base_live = s.base.size();
}

std::string_view LabelBuilder::Get(std::string_view name) const {
  return state_->Get(name);
}

void LabelBuilder::Set(std::string_view name, std::string_view value) {
  State& s = *state_;
  if (value.empty()) {
    s.Del(name);
    return;
  }
  std::string_view v = s.arena.Copy(value);
  for (const Label& a : s.add) {
    if (a.name == name) {
      s.SetStable(a.name, v);
      return;
    }
  }
  s.SetStable(name.empty() ? name : s.arena.Copy(name), v);
}

void LabelBuilder::Delete(std::string_view name) { state_->Del(name); }

absl::Span<const Label> LabelBuilder::Result() {
  State& s = *state_;
  if (s.result_valid) return s.result;
  s.result.resize(s.live());
  Label* out = s.result.data();
  if (s.add.empty()) {
    for (const State::BaseEntry& e : s.base) {
      if (!e.touched) *out++ = e.label;
    }
  } else {
    // The written labels, sorted, merged into the untouched (sorted) input.
    s.visit.assign(s.add.begin(), s.add.end());
    std::sort(s.visit.begin(), s.visit.end(), NameLess);
    auto a = s.visit.begin();
    for (const State::BaseEntry& e : s.base) {
      if (e.touched) continue;
      while (a != s.visit.end() && NameLess(*a, e.label)) *out++ = *a++;
      *out++ = e.label;
    }
    while (a != s.visit.end()) *out++ = *a++;
  }
  s.result_valid = true;
  return s.result;
}

// ---------------------------------------------------------------------------
// Rules

struct RuleSet::Rule {
  Action action = Action::kReplace;
  NameScheme scheme = NameScheme::kUtf8;
  std::vector<std::string> source_labels;
  std::string separator;
  Regex regex;
  uint64_t modulus = 0;
  std::string target_label;
  Template target;           // replace
  Template replacement;      // replace, labelmap
  bool target_valid = true;  // replace with a literal target
  int groups_needed = 0;

  bool Apply(LabelBuilder::State& s) const;
  std::string_view SourceValue(LabelBuilder::State& s, bool& stable) const;
  std::string_view ExpandReplacement(LabelBuilder::State& s,
                                     const Group* groups, bool stable) const;
};

std::string_view RuleSet::Rule::SourceValue(LabelBuilder::State& s,
                                            bool& stable) const {
  stable = true;
  switch (source_labels.size()) {
    case 0:
      return {};
    case 1:
      return s.Get(source_labels[0]);
    default:
      break;
  }
  stable = false;
  s.join.clear();
  for (size_t i = 0; i < source_labels.size(); ++i) {
    if (i > 0) s.join.append(separator);
    std::string_view v = s.Get(source_labels[i]);
    s.join.append(v.data(), v.size());
  }
  return s.join;
}

// Expands `replacement` into bytes that live until Reset(). Group texts
// point into the matched string; `stable` says whether that string lives
// until Reset() (a label name or value) or is scratch (a joined value).
std::string_view RuleSet::Rule::ExpandReplacement(LabelBuilder::State& s,
                                                  const Group* groups,
                                                  bool stable) const {
  if (replacement.is_literal()) return replacement.literal();
  if (int g = replacement.single_group(); g >= 0) {
    std::string_view v = groups[g];
    return stable ? v : s.arena.Copy(v);
  }
  s.scratch.clear();
  replacement.Expand(groups, s.scratch);
  return s.arena.Copy(s.scratch);
}

bool RuleSet::Rule::Apply(LabelBuilder::State& s) const {
  switch (action) {
    case Action::kLabelMap: {
      s.Snapshot();
      Group* groups = s.GroupsFor(groups_needed);
      for (size_t i = 0; i < s.visit.size(); ++i) {
        const Label l = s.visit[i];
        if (!regex.MatchGroups(l.name, groups_needed, groups, s.match)) {
          continue;
        }
        // Go sets the mapped name without checking it.
        std::string_view name = ExpandReplacement(s, groups, true);
        s.SetStable(name, l.value);
      }
      return true;
    }
    case Action::kLabelDrop:
      if (regex.kind() == Regex::Kind::kLiterals) {
        // Deleting an absent name changes nothing, so no scan is needed.
        for (const std::string& name : regex.literals()) s.Del(name);
        return true;
      }
      [[fallthrough]];
    case Action::kLabelKeep: {
      bool keep = action == Action::kLabelKeep;
      s.Snapshot();
      for (const Label& l : s.visit) {
        if (regex.Match(l.name, s.match) != keep) s.Del(l.name);
      }
      return true;
    }
    default:
      break;
  }

  bool stable;
  std::string_view val = SourceValue(s, stable);
  switch (action) {
    case Action::kDrop:
      return !regex.Match(val, s.match);
    case Action::kKeep:
      return regex.Match(val, s.match);
    case Action::kDropEqual:
      return s.Get(target_label) != val;
    case Action::kKeepEqual:
      return s.Get(target_label) == val;
    case Action::kReplace: {
      if (!target_valid) return true;  // a literal target that is never valid
      Group* groups = s.GroupsFor(groups_needed);
      if (!regex.MatchGroups(val, groups_needed, groups, s.match)) return true;
      std::string_view name;
      bool name_in_scratch = false;
      if (target.is_literal()) {
        name = target.literal();
      } else {
        s.name_scratch.clear();
        target.Expand(groups, s.name_scratch);
        if (!IsValidLabelName(s.name_scratch, scheme)) return true;
        name = s.name_scratch;
        name_in_scratch = true;
      }
      std::string_view value = ExpandReplacement(s, groups, stable);
      if (value.empty()) {
        s.Del(name);
        return true;
      }
      if (name_in_scratch) name = s.arena.Copy(name);
      s.SetStable(name, value);
      return true;
    }
    case Action::kLowercase:
    case Action::kUppercase: {
      s.scratch.clear();
      bool changed = action == Action::kLowercase
                         ? internal::ToLowerGo(val, s.scratch)
                         : internal::ToUpperGo(val, s.scratch);
      std::string_view value = changed ? s.arena.Copy(s.scratch)
                                       : (stable ? val : s.arena.Copy(val));
      if (value.empty()) {
        s.Del(target_label);
      } else {
        s.SetStable(target_label, value);
      }
      return true;
    }
    case Action::kHashMod: {
      uint64_t h = internal::Md5Low64BigEndian(val) % modulus;
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), h);
      s.SetStable(target_label, s.arena.Copy(std::string_view(buf, end - buf)));
      return true;
    }
    default:
      return true;
  }
}

absl::StatusOr<std::shared_ptr<const RuleSet::Rule>> RuleSet::CompileRule(
    const RuleSpec& spec, NameScheme scheme, bool fast_paths) {
  auto rule = std::make_shared<RuleSet::Rule>();
  rule->scheme = scheme;

  // Errors Prometheus raises while parsing the YAML, before Validate().
  absl::StatusOr<Regex> regex = Regex::Compile(
      spec.regex.value_or(std::string(kDefaultRegex)), fast_paths);
  if (!regex.ok()) return FieldError("regex", MessageOf(regex.status()));
  rule->regex = std::move(*regex);

  bool action_empty = spec.action_null;
  if (!spec.action_null && spec.action.has_value()) {
    // Go lower-cases with strings.ToLower (Unicode-aware).
    std::string lower;
    if (!internal::ToLowerGo(*spec.action, lower)) lower = *spec.action;
    bool found = false;
    for (const ActionName& n : kActions) {
      if (n.name == lower) {
        rule->action = n.action;
        found = true;
      }
    }
    if (!found) {
      return FieldError(
          "action", Concat("unknown relabel action ", GoQuote(*spec.action)));
    }
  }
  if (spec.source_labels.has_value()) {
    // Prometheus parses source_labels with UTF-8 validation whatever the
    // rule's scheme (prometheus/common LabelName.UnmarshalYAML).
    for (const std::string& name : *spec.source_labels) {
      if (!IsValidLabelName(name, NameScheme::kUtf8)) {
        return FieldError("source_labels",
                          Concat(GoQuote(name), " is not a valid label name"));
      }
    }
    rule->source_labels = *spec.source_labels;
  }

  const Action a = rule->action;
  const std::string_view action = NameOf(a);
  const std::string target = spec.target_label.value_or("");
  const std::string separator =
      spec.separator.value_or(std::string(kDefaultSeparator));
  const std::string replacement =
      spec.replacement.value_or(std::string(kDefaultReplacement));
  const uint64_t modulus = spec.modulus.value_or(0);
  auto is = [a](std::initializer_list<Action> set) {
    return std::find(set.begin(), set.end(), a) != set.end();
  };
  const bool literal_target_action =
      is({Action::kLowercase, Action::kUppercase, Action::kKeepEqual,
          Action::kDropEqual});

  // Prometheus's Config.Validate, check by check, in its order.
  if (action_empty)
    return FieldError("action", "relabel action cannot be empty");
  if (a == Action::kHashMod && modulus == 0) {
    return FieldError(
        "modulus",
        "relabel configuration for hashmod requires non-zero modulus");
  }
  if ((a == Action::kReplace || a == Action::kHashMod ||
       literal_target_action) &&
      target.empty()) {
    return FieldError("target_label",
                      Concat("relabel configuration for ", action,
                             " action requires 'target_label' value"));
  }
  auto bad_target = [&] {
    return FieldError("target_label",
                      Concat(GoQuote(target), " is invalid 'target_label' for ",
                             action, " action"));
  };
  const bool target_has_var = target.find('$') != std::string::npos;
  if (a == Action::kReplace) {
    if (!target_has_var && !IsValidLabelName(target, scheme))
      return bad_target();
    if (target_has_var && !IsValidTemplateName(target, scheme))
      return bad_target();
  }
  if (literal_target_action && !IsValidLabelName(target, scheme))
    return bad_target();
  if (literal_target_action && replacement != kDefaultReplacement) {
    return FieldError("replacement", Concat("'replacement' can not be set for ",
                                            action, " action"));
  }
  if (a == Action::kLabelMap && !IsValidTemplateName(replacement, scheme)) {
    return FieldError("replacement",
                      Concat(GoQuote(replacement),
                             " is invalid 'replacement' for labelmap action"));
  }
  if (a == Action::kHashMod && !IsValidLabelName(target, scheme))
    return bad_target();

  // Prometheus compares the regex and source_labels against the defaults by
  // identity, so it rejects even an explicit `regex: (.*)` (keepequal/
  // dropequal) or `source_labels: []` (labeldrop/labelkeep). promrelay
  // compares by value: a field written out with its default value is
  // accepted, as Prometheus already does for separator, replacement and
  // modulus.
  if (a == Action::kKeepEqual || a == Action::kDropEqual) {
    std::string_view field;
    if (spec.regex.has_value() && *spec.regex != kDefaultRegex) {
      field = "regex";
    } else if (modulus != 0) {
      field = "modulus";
    } else if (separator != kDefaultSeparator) {
      field = "separator";
    } else if (replacement != kDefaultReplacement) {
      field = "replacement";
    }
    if (!field.empty()) {
      return FieldError(field,
                        Concat(action,
                               " action requires only 'source_labels' and "
                               "`target_label`, and no other fields"));
    }
  }
  if (a == Action::kLabelDrop || a == Action::kLabelKeep) {
    std::string_view field;
    if (spec.source_labels.has_value() && !spec.source_labels->empty()) {
      field = "source_labels";
    } else if (!target.empty()) {
      field = "target_label";
    } else if (modulus != 0) {
      field = "modulus";
    } else if (separator != kDefaultSeparator) {
      field = "separator";
    } else if (replacement != kDefaultReplacement) {
      field = "replacement";
    }
    if (!field.empty()) {
      return FieldError(field, Concat(action,
                                      " action requires only 'regex', and no "
                                      "other fields"));
    }
  }

  rule->separator = separator;
  rule->modulus = modulus;
  rule->target_label = target;
  const int ngroups = rule->regex.num_groups();
  const auto& names = rule->regex.group_names();
  if (a == Action::kReplace) {
    rule->target = Template::Parse(target, ngroups, names);
    if (rule->target.is_literal()) {
      // Checked at run time by Prometheus; the answer never changes.
      rule->target_valid = IsValidLabelName(rule->target.literal(), scheme);
    }
    rule->replacement = Template::Parse(replacement, ngroups, names);
    rule->groups_needed =
        std::max(rule->target.max_group(), rule->replacement.max_group());
  } else if (a == Action::kLabelMap) {
    rule->replacement = Template::Parse(replacement, ngroups, names);
    rule->groups_needed = rule->replacement.max_group();
  }
  return std::shared_ptr<const RuleSet::Rule>(std::move(rule));
}

absl::Status ValidateRule(const RuleSpec& spec, NameScheme scheme) {
  return RuleSet::CompileRule(spec, scheme, true).status();
}

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(const RuleSet&) = default;
RuleSet& RuleSet::operator=(const RuleSet&) = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

absl::StatusOr<RuleSet> RuleSet::Compile(absl::Span<const RuleSpec> specs,
                                         NameScheme scheme) {
  return Compile(specs, scheme, Options());
}

absl::StatusOr<RuleSet> RuleSet::Compile(absl::Span<const RuleSpec> specs,
                                         NameScheme scheme,
                                         const Options& options) {
  RuleSet set;
  set.rules_.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto rule = CompileRule(specs[i], scheme, options.regex_fast_paths);
    if (!rule.ok()) {
      return absl::InvalidArgumentError(
          Concat("[", std::to_string(i), "].", MessageOf(rule.status())));
    }
    set.rules_.push_back(std::move(*rule));
  }
  return set;
}

bool RuleSet::Apply(LabelBuilder& labels) const {
  LabelBuilder::State& s = *labels.state_;
  for (const auto& rule : rules_) {
    if (!rule->Apply(s)) return false;
  }
  return s.live() > 0;
}

size_t RuleSet::size() const { return rules_.size(); }

}  // namespace promrelay::relabel
