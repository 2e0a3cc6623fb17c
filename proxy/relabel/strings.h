// Small string helpers. Debian's abseil keeps its own absl::string_view
// (not std::string_view), so absl::StrCat does not take std::string_view.
#ifndef PROMRELAY_PROXY_RELABEL_STRINGS_H_
#define PROMRELAY_PROXY_RELABEL_STRINGS_H_

#include <string>
#include <string_view>

namespace promrelay::relabel::internal {

inline std::string Concat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string out;
  out.reserve(n);
  for (std::string_view p : parts) out.append(p.data(), p.size());
  return out;
}

template <typename... Parts>
std::string Concat(const Parts&... parts) {
  return Concat({std::string_view(parts)...});
}

}  // namespace promrelay::relabel::internal

#endif  // PROMRELAY_PROXY_RELABEL_STRINGS_H_
