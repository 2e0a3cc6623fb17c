// Small string helpers for the benchmark tools. Debian's abseil has its own
// absl::string_view (not an alias of std::string_view), so std::string_view
// values are passed to abseil through AV().
#ifndef PROMRELAY_BENCH_STRUTIL_H_
#define PROMRELAY_BENCH_STRUTIL_H_

#include <cctype>
#include <string_view>

#include "absl/strings/string_view.h"

namespace promrelay::bench {

inline absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

inline bool ContainsIgnoreCase(std::string_view hay, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (EqualsIgnoreCase(hay.substr(i, needle.size()), needle)) return true;
  return needle.empty();
}

inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace promrelay::bench

#endif  // PROMRELAY_BENCH_STRUTIL_H_
