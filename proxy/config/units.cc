// Value syntaxes shared by the config loader and its callers: Prometheus
// durations, byte sizes and `${ENV}` references.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"

namespace promrelay::config {
namespace {

struct Unit {
  absl::string_view name;
  int64_t ms;
};

// Prometheus model.Duration units, largest first; each may appear once, in
// this order. "ms" must be tried before "m".
constexpr Unit kDurationUnits[] = {
    {"y", 365LL * 24 * 3600 * 1000},
    {"w", 7LL * 24 * 3600 * 1000},
    {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
    {"ms", 1},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text_in) {
  absl::string_view text(text_in.data(), text_in.size());
  auto invalid = [&] {
    std::string hint;
    bool all_digits = !text.empty();
    for (char c : text) all_digits = all_digits && IsDigit(c);
    if (all_digits) hint = " (add a unit: ms, s, m, h, d, w or y)";
    return absl::InvalidArgumentError(absl::StrCat(
        "not a valid duration string: \"", absl::CEscape(text), "\"", hint));
  };
  // Prometheus accepts a bare "0" and nothing else without a unit.
  if (text == "0") return absl::ZeroDuration();
  if (text.empty()) return invalid();
  // Milliseconds in 128 bits so that overflow is detected, not wrapped.
  __int128 total_ms = 0;
  size_t pos = 0;
  int next_unit = 0;  // index of the smallest unit still allowed
  while (pos < text.size()) {
    size_t start = pos;
    __int128 n = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      n = n * 10 + (text[pos] - '0');
      if (n > (static_cast<__int128>(1) << 80)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "duration out of range: \"", absl::CEscape(text), "\""));
      }
      ++pos;
    }
    if (pos == start) return invalid();
    int unit = -1;
    for (int u = next_unit; u < static_cast<int>(std::size(kDurationUnits));
         ++u) {
      absl::string_view name = kDurationUnits[u].name;
      if (text.substr(pos, name.size()) != name) continue;
      // "m" must not swallow the "m" of "ms".
      if (name == "m" && text.substr(pos, 2) == "ms") continue;
      unit = u;
      break;
    }
    if (unit < 0) return invalid();
    pos += kDurationUnits[unit].name.size();
    next_unit = unit + 1;
    total_ms += n * kDurationUnits[unit].ms;
  }
  if (total_ms * 1000000 > std::numeric_limits<int64_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration out of range: \"", absl::CEscape(text), "\""));
  }
  return absl::Milliseconds(static_cast<int64_t>(total_ms));
}

std::string DurationString(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms <= 0) return ms == 0 ? "0s" : absl::StrCat(absl::FormatDuration(d));
  std::string out;
  for (const Unit& u : kDurationUnits) {
    if (ms >= u.ms) {
      absl::StrAppend(&out, ms / u.ms, u.name);
      ms %= u.ms;
    }
  }
  return out;
}

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text_in) {
  absl::string_view text(text_in.data(), text_in.size());
  struct SizeUnit {
    absl::string_view name;
    uint64_t factor;
  };
  static constexpr SizeUnit kUnits[] = {
      {"B", 1},
      {"KB", 1000ULL},
      {"MB", 1000ULL * 1000},
      {"GB", 1000ULL * 1000 * 1000},
      {"TB", 1000ULL * 1000 * 1000 * 1000},
      {"KiB", 1ULL << 10},
      {"MiB", 1ULL << 20},
      {"GiB", 1ULL << 30},
      {"TiB", 1ULL << 40},
  };
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid byte size \"", absl::CEscape(text),
        "\": want an integer with an optional unit (B, KB, MB, GB, TB, KiB, "
        "MiB, GiB, TiB)"));
  };
  size_t pos = 0;
  uint64_t n = 0;
  while (pos < text.size() && IsDigit(text[pos])) {
    uint64_t digit = text[pos] - '0';
    if (n > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return absl::InvalidArgumentError(absl::StrCat(
          "byte size out of range: \"", absl::CEscape(text), "\""));
    }
    n = n * 10 + digit;
    ++pos;
  }
  if (pos == 0) return invalid();
  absl::string_view suffix = text.substr(pos);
  if (suffix.empty()) return n;
  for (const SizeUnit& u : kUnits) {
    if (suffix != u.name) continue;
    if (n > std::numeric_limits<uint64_t>::max() / u.factor) {
      return absl::InvalidArgumentError(absl::StrCat(
          "byte size out of range: \"", absl::CEscape(text), "\""));
    }
    return n * u.factor;
  }
  return invalid();
}

absl::StatusOr<std::string> ExpandEnv(std::string_view text_in) {
  absl::string_view text(text_in.data(), text_in.size());
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t dollar = text.find('$', pos);
    if (dollar == absl::string_view::npos) {
      out.append(text.data() + pos, text.size() - pos);
      break;
    }
    out.append(text.data() + pos, dollar - pos);
    absl::string_view rest = text.substr(dollar);
    if (rest.substr(0, 2) == "$$") {
      out.push_back('$');
      pos = dollar + 2;
      continue;
    }
    if (rest.substr(0, 2) != "${") {
      // A lone `$` (e.g. in a password) is not a reference.
      out.push_back('$');
      pos = dollar + 1;
      continue;
    }
    size_t close = rest.find('}');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "unterminated ${...} reference (write $$ for a literal $)");
    }
    absl::string_view name = rest.substr(2, close - 2);
    bool valid = !name.empty() && !IsDigit(name[0]);
    for (char c : name) {
      valid = valid &&
              (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_');
    }
    if (!valid) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid environment variable reference \"${", absl::CEscape(name),
          "}\": a name is letters, digits and _ (write $$ for a literal $)"));
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", name, " is not set"));
    }
    out.append(value);
    pos = dollar + close + 1;
  }
  return out;
}

}  // namespace promrelay::config
