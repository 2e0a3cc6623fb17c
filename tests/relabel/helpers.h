// Shared helpers for the relabel tests: a RuleSpec builder and a runner that
// applies rules with and without the regex fast paths and checks both agree.
#ifndef PROMRELAY_TESTS_RELABEL_HELPERS_H_
#define PROMRELAY_TESTS_RELABEL_HELPERS_H_

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proxy/relabel/relabel.h"

namespace promrelay::relabel::testing {

using LabelMap = std::map<std::string, std::string>;

// Builds a RuleSpec field by field; unset fields stay omitted (defaults).
struct R {
  RuleSpec s;
  R& src(std::vector<std::string> v) {
    s.source_labels = std::move(v);
    return *this;
  }
  R& sep(std::string v) {
    s.separator = std::move(v);
    return *this;
  }
  R& re(std::string v) {
    s.regex = std::move(v);
    return *this;
  }
  R& mod(uint64_t v) {
    s.modulus = v;
    return *this;
  }
  R& target(std::string v) {
    s.target_label = std::move(v);
    return *this;
  }
  R& repl(std::string v) {
    s.replacement = std::move(v);
    return *this;
  }
  R& action(std::string v) {
    s.action = std::move(v);
    return *this;
  }
  R& action_null() {
    s.action.reset();
    s.action_null = true;
    return *this;
  }
  operator RuleSpec() const { return s; }  // NOLINT: test sugar
};

inline std::string Describe(const std::optional<LabelMap>& m) {
  if (!m) return "<dropped>";
  std::string out = "{";
  for (const auto& [k, v] : *m) {
    if (out.size() > 1) out += ", ";
    out += k + "=\"" + v + "\"";
  }
  return out + "}";
}

// Applies `rules` to `input` (passed to the builder in reverse order, so
// sorting is exercised too). Returns nullopt when the series is dropped.
inline std::optional<LabelMap> ApplyOnce(const RuleSet& rules,
                                         const LabelMap& input,
                                         LabelBuilder& builder) {
  std::vector<Label> in;
  for (auto it = input.rbegin(); it != input.rend(); ++it) {
    in.push_back({it->first, it->second});
  }
  builder.Reset(in);
  if (!rules.Apply(builder)) return std::nullopt;
  absl::Span<const Label> out = builder.Result();
  LabelMap m;
  for (size_t i = 0; i < out.size(); ++i) {
    INFO("label " << i);
    CHECK(!out[i].value.empty());
    if (i > 0) CHECK(out[i - 1].name < out[i].name);
    m[std::string(out[i].name)] = std::string(out[i].value);
  }
  CHECK(!m.empty());
  return m;
}

inline RuleSet MustCompile(const std::vector<RuleSpec>& specs,
                           NameScheme scheme = NameScheme::kUtf8,
                           bool fast_paths = true) {
  RuleSet::Options options;
  options.regex_fast_paths = fast_paths;
  auto rs = RuleSet::Compile(specs, scheme, options);
  INFO(rs.status().ToString());
  REQUIRE(rs.ok());
  return std::move(*rs);
}

// Runs the rules with fast paths and with RE2 only, checks both give the
// same answer, and reuses one builder twice to catch stale state.
inline std::optional<LabelMap> Run(const std::vector<RuleSpec>& specs,
                                   const LabelMap& input,
                                   NameScheme scheme = NameScheme::kUtf8) {
  RuleSet fast = MustCompile(specs, scheme, true);
  RuleSet slow = MustCompile(specs, scheme, false);
  LabelBuilder builder;
  std::optional<LabelMap> a = ApplyOnce(fast, input, builder);
  std::optional<LabelMap> b = ApplyOnce(slow, input, builder);
  std::optional<LabelMap> c = ApplyOnce(fast, input, builder);
  INFO("fast: " << Describe(a) << " re2: " << Describe(b));
  CHECK(a == b);
  CHECK(a == c);
  return a;
}

// The error of compiling one rule ("" when it is valid).
inline std::string ErrorOf(const RuleSpec& spec,
                           NameScheme scheme = NameScheme::kUtf8) {
  absl::Status st = ValidateRule(spec, scheme);
  auto rs = RuleSet::Compile({spec}, scheme);
  // ValidateRule and Compile must agree; Compile prefixes "[0].".
  if (st.ok()) {
    CHECK(rs.ok());
    return "";
  }
  REQUIRE_FALSE(rs.ok());
  std::string msg(st.message());
  CHECK(std::string(rs.status().message()) == "[0]." + msg);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  return msg;
}

}  // namespace promrelay::relabel::testing

#endif  // PROMRELAY_TESTS_RELABEL_HELPERS_H_
