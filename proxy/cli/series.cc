#include "proxy/cli/series.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "proxy/cli/json.h"
#include "proxy/relabel/relabel.h"

namespace promrelay::cli {
namespace {

bool IsNameStart(char c, bool metric) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (metric && c == ':');
}
bool IsNameChar(char c, bool metric) {
  return IsNameStart(c, metric) || (c >= '0' && c <= '9');
}

bool IsLegacyName(absl::string_view s, bool metric) {
  if (s.empty() || !IsNameStart(s[0], metric)) return false;
  for (char c : s) {
    if (!IsNameChar(c, metric)) return false;
  }
  return true;
}

class LineParser {
 public:
  explicit LineParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<LabelSet> Parse() {
    SkipSpace();
    std::string name;
    bool have_name = false;
    if (pos_ < text_.size() && IsNameStart(text_[pos_], true)) {
      size_t start = pos_;
      while (pos_ < text_.size() && IsNameChar(text_[pos_], true)) ++pos_;
      name = std::string(text_.substr(start, pos_ - start));
      have_name = true;
      SkipSpace();
    }
    LabelSet labels;
    if (have_name) labels.emplace_back("__name__", name);
    if (Peek('{')) {
      ++pos_;
      if (absl::Status st = Labels(have_name, &labels); !st.ok()) return st;
    } else if (!have_name) {
      return Fail("want a metric name, `{` or a JSON object");
    }
    if (absl::Status st = Trailer(); !st.ok()) return st;
    return labels;
  }

 private:
  absl::Status Fail(absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("column ", pos_ + 1, ": ", why));
  }
  bool Peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }

  // A double-quoted string with the escapes of the exposition format.
  absl::StatusOr<std::string> Quoted() {
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) return Fail("unterminated string");
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return Fail("unterminated string");
      char e = text_[pos_++];
      if (e == '\\' || e == '"') {
        out.push_back(e);
      } else if (e == 'n') {
        out.push_back('\n');
      } else {
        --pos_;
        return Fail(
            absl::StrFormat("unknown escape \\%c (want \\\\, \\\" or \\n)", e));
      }
    }
  }

  absl::Status Labels(bool have_name, LabelSet* labels) {
    while (true) {
      SkipSpace();
      if (Peek('}')) {
        ++pos_;
        return absl::OkStatus();
      }
      std::string label;
      bool quoted = false;
      if (Peek('"')) {
        absl::StatusOr<std::string> q = Quoted();
        if (!q.ok()) return q.status();
        label = *std::move(q);
        quoted = true;
      } else if (pos_ < text_.size() && IsNameStart(text_[pos_], false)) {
        size_t start = pos_;
        while (pos_ < text_.size() && IsNameChar(text_[pos_], false)) ++pos_;
        label = std::string(text_.substr(start, pos_ - start));
      } else {
        return Fail("want a label name or `}`");
      }
      SkipSpace();
      if (quoted && (Peek(',') || Peek('}'))) {
        // `{"my.metric", a="b"}`: a quoted metric name (Prometheus 3).
        if (have_name) return Fail("the metric name is given twice");
        have_name = true;
        if (label.empty()) return Fail("empty metric name");
        labels->emplace_back("__name__", label);
      } else {
        if (!Peek('=')) return Fail("want `=` after the label name");
        ++pos_;
        SkipSpace();
        if (!Peek('"')) return Fail("want a double-quoted label value");
        absl::StatusOr<std::string> value = Quoted();
        if (!value.ok()) return value.status();
        if (label.empty()) return Fail("empty label name");
        labels->emplace_back(label, *std::move(value));
      }
      SkipSpace();
      if (Peek(',')) {
        ++pos_;
        continue;
      }
      if (Peek('}')) {
        ++pos_;
        return absl::OkStatus();
      }
      return Fail("want `,` or `}`");
    }
  }

 public:
  // After the labels: an optional value, an optional timestamp, then an
  // optional `# exemplar`.
  absl::Status Trailer() {
    for (int field = 0;; ++field) {
      SkipSpace();
      if (pos_ >= text_.size() || Peek('#')) return absl::OkStatus();
      size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != ' ' && text_[pos_] != '\t') {
        ++pos_;
      }
      std::string token(text_.substr(start, pos_ - start));
      if (field == 0) {
        std::string lower = absl::AsciiStrToLower(token);
        bool special = lower == "nan" || lower == "inf" || lower == "+inf" ||
                       lower == "-inf";
        char* end = nullptr;
        std::strtod(token.c_str(), &end);
        if (!special && (end == token.c_str() || *end != '\0')) {
          pos_ = start;
          return Fail(absl::StrCat("\"", absl::CHexEscape(token),
                                   "\" is not a sample value"));
        }
      } else if (field == 1) {
        absl::string_view digits = token;
        absl::ConsumePrefix(&digits, "-");
        bool ok = !digits.empty();
        for (char c : digits) ok = ok && c >= '0' && c <= '9';
        if (!ok) {
          pos_ = start;
          return Fail(absl::StrCat("\"", absl::CHexEscape(token),
                                   "\" is not a timestamp (integer)"));
        }
      } else {
        pos_ = start;
        return Fail("unexpected text after the value and timestamp");
      }
    }
  }

  void set_pos(size_t pos) { pos_ = pos; }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

// `{` then optional space then a string then `:` means JSON.
bool LooksLikeJson(absl::string_view line) {
  size_t i = 0;
  auto skip = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  };
  skip();
  if (i >= line.size() || line[i] != '{') return false;
  ++i;
  skip();
  if (i >= line.size() || line[i] != '"') return false;
  ++i;
  while (i < line.size() && line[i] != '"') {
    if (line[i] == '\\') ++i;
    ++i;
  }
  ++i;
  skip();
  return i < line.size() && line[i] == ':';
}

absl::StatusOr<LabelSet> ParseJsonLine(absl::string_view line) {
  size_t consumed = 0;
  absl::StatusOr<JsonValue> v = ParseJson(line, &consumed);
  if (!v.ok()) return v.status();
  if (v->type != JsonValue::Type::kObject) {
    return absl::InvalidArgumentError("want a JSON object of label -> value");
  }
  LabelSet labels;
  for (auto& [name, value] : v->object) {
    if (value.type != JsonValue::Type::kString) {
      return absl::InvalidArgumentError(
          absl::StrCat("label \"", absl::CHexEscape(name),
                       "\": the value must be a string"));
    }
    if (name.empty()) return absl::InvalidArgumentError("empty label name");
    labels.emplace_back(name, value.text);
  }
  LineParser trailer(line);
  trailer.set_pos(consumed);
  if (absl::Status st = trailer.Trailer(); !st.ok()) return st;
  return labels;
}

void AppendName(std::string* out, absl::string_view name, bool metric) {
  if (IsLegacyName(name, metric)) {
    out->append(name.data(), name.size());
    return;
  }
  out->push_back('"');
  for (char c : name) {
    if (c == '"' || c == '\\') out->push_back('\\');
    if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

absl::StatusOr<std::optional<LabelSet>> ParseSeriesLine(
    absl::string_view line) {
  if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(line);
  if (trimmed.empty() || trimmed[0] == '#') return std::nullopt;
  if (!relabel::IsValidUtf8(std::string_view(line.data(), line.size()))) {
    return absl::InvalidArgumentError("the line is not valid UTF-8");
  }
  absl::StatusOr<LabelSet> labels =
      LooksLikeJson(line) ? ParseJsonLine(line) : LineParser(line).Parse();
  if (!labels.ok()) return labels.status();
  if (labels->empty()) {
    return absl::InvalidArgumentError("the series has no labels");
  }
  std::stable_sort(
      labels->begin(), labels->end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < labels->size(); ++i) {
    if ((*labels)[i].first == (*labels)[i - 1].first) {
      return absl::InvalidArgumentError(
          absl::StrCat("label \"", absl::CHexEscape((*labels)[i].first),
                       "\" is given twice"));
    }
  }
  return std::optional<LabelSet>(*std::move(labels));
}

std::string LabelSetToJson(const LabelSet& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, name);
    out.push_back(':');
    AppendJsonString(&out, value);
  }
  out.push_back('}');
  return out;
}

std::string LabelSetToText(const LabelSet& labels) {
  std::string out;
  bool named = false;
  for (const auto& [name, value] : labels) {
    if (name == "__name__" && IsLegacyName(value, true)) {
      out = value;
      named = true;
    }
  }
  out.push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (named && name == "__name__") continue;
    if (!first) out.push_back(',');
    first = false;
    AppendName(&out, name, false);
    out.append("=\"");
    for (char c : value) {
      if (c == '"' || c == '\\') out.push_back('\\');
      if (c == '\n') {
        out.append("\\n");
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace promrelay::cli
