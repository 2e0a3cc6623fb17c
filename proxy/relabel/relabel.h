// Prometheus-exact relabeling (model/relabel): compiles relabel_config rules
// and applies them to one series' label set at a time.
//
// See ../shared/relabel-semantics.md for the behaviour reproduced here.
// Where promrelay knowingly differs from Prometheus:
//  - keepequal/dropequal and labeldrop/labelkeep compare their "must not be
//    set" fields with the defaults by value, so an explicit `regex: (.*)` or
//    `source_labels: []` is accepted (Prometheus rejects it by identity).
//  - A regex error quotes the pattern as written ("`(a`"), not the anchored
//    form Go's message shows ("`^(?s:(a)$`").
// Regexes run on RE2; inputs that are not valid UTF-8 are matched the way Go
// does (each invalid byte as U+FFFD). Patterns that are literals,
// alternations of literals, or a literal prefix/suffix around .* .+ (.*)
// (.+) are matched without RE2.
#ifndef PROMRELAY_PROXY_RELABEL_RELABEL_H_
#define PROMRELAY_PROXY_RELABEL_RELABEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace promrelay::relabel {

struct Label {
  std::string_view name;
  std::string_view value;
  friend bool operator==(const Label&, const Label&) = default;
};

// How label names are validated (Prometheus metric_name_validation_scheme).
enum class NameScheme { kUtf8, kLegacy };

// kUtf8: non-empty valid UTF-8. kLegacy: [a-zA-Z_][a-zA-Z0-9_]*.
bool IsValidLabelName(std::string_view name, NameScheme scheme);

// Go's utf8.ValidString: overlong forms, surrogates and code points above
// U+10FFFF are invalid.
bool IsValidUtf8(std::string_view s);

// One rule as written in YAML. Presence is kept because Prometheus tells an
// omitted key (default), an explicit "" and a YAML null (zero value) apart:
// the loader stores a null `regex:`/`separator:`/`replacement:` as "".
struct RuleSpec {
  std::optional<std::vector<std::string>> source_labels;
  std::optional<std::string> separator;
  std::optional<std::string> regex;
  std::optional<uint64_t> modulus;
  std::optional<std::string> target_label;
  std::optional<std::string> replacement;
  std::optional<std::string> action;  // nullopt: key omitted (replace)
  bool action_null = false;           // `action:` given with a YAML null
};

// The working label set of one series while rules run. Names and values are
// views: into the caller's input, or into bytes this builder owns (values a
// rule computed). Reuse one builder per thread; Reset() keeps its capacity.
class LabelBuilder {
 public:
  LabelBuilder();
  ~LabelBuilder();
  LabelBuilder(LabelBuilder&&) noexcept;
  LabelBuilder& operator=(LabelBuilder&&) noexcept;

  // Starts a new series. `input` need not be sorted; its bytes must outlive
  // every use of this builder until the next Reset(). A label with an empty
  // value is the same as an absent one (dropped here); of repeated names
  // the first is kept.
  void Reset(absl::Span<const Label> input);
  // The current value of `name`; "" when absent.
  std::string_view Get(std::string_view name) const;
  // Sets `name` to `value` (copied); an empty value deletes the label.
  void Set(std::string_view name, std::string_view value);
  void Delete(std::string_view name);
  // The result: empty-valued labels removed, sorted by name byte-wise, no
  // repeated names. Valid until the next mutating call. Views point into
  // the input, this builder, or the RuleSet last applied.
  absl::Span<const Label> Result();

 private:
  friend class RuleSet;
  struct State;
  std::unique_ptr<State> state_;
};

// A compiled, immutable list of rules. Thread-safe to Apply concurrently.
// Copies are cheap and share the compiled rules.
class RuleSet {
 public:
  RuleSet();
  ~RuleSet();
  RuleSet(const RuleSet&);
  RuleSet& operator=(const RuleSet&);
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  // Validates and compiles `specs` in order. The first invalid rule fails it
  // with InvalidArgument "[N].<field>: <why>" (N = the rule's index).
  static absl::StatusOr<RuleSet> Compile(absl::Span<const RuleSpec> specs,
                                         NameScheme scheme);
  struct Options {
    // Off: every regex match goes through RE2 (tests and benchmarks compare
    // the literal/prefix/match-all fast paths against it).
    bool regex_fast_paths = true;
  };
  static absl::StatusOr<RuleSet> Compile(absl::Span<const RuleSpec> specs,
                                         NameScheme scheme,
                                         const Options& options);

  // Runs every rule on `labels`. Returns false when a rule dropped the series
  // or no label is left; the builder then holds an unspecified state. On
  // true, labels.Result() is the relabeled set. Names and values in it may
  // point into this RuleSet (literal target labels and replacements), so
  // the RuleSet must outlive the use of that result.
  bool Apply(LabelBuilder& labels) const;

  size_t size() const;
  bool empty() const { return size() == 0; }

 private:
  struct Rule;
  friend absl::Status ValidateRule(const RuleSpec& spec, NameScheme scheme);
  static absl::StatusOr<std::shared_ptr<const Rule>> CompileRule(
      const RuleSpec& spec, NameScheme scheme, bool fast_paths);
  std::vector<std::shared_ptr<const Rule>> rules_;
};

// Validation of a single rule, as RuleSet::Compile does it. The error message
// starts with the name of the YAML key at fault and ": " (for example
// "regex: error parsing regexp: missing closing ): `(a`"), so the config
// loader can point at that key's line. Rule-level errors name the key that
// decides them (an empty action: "action: relabel action cannot be empty").
// The keys are source_labels, separator, regex, modulus, target_label,
// replacement and action. The checks run in Prometheus's order; the first
// failure wins.
absl::Status ValidateRule(const RuleSpec& spec, NameScheme scheme);

}  // namespace promrelay::relabel

#endif  // PROMRELAY_PROXY_RELABEL_RELABEL_H_
