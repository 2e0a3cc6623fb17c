// UTF-8 and Unicode helpers that reproduce Go's behaviour where relabeling
// depends on it: utf8.DecodeRuneInString / utf8.ValidString, the simple case
// mappings of unicode.ToLower/ToUpper (as strings.ToLower/ToUpper use them),
// and unicode.IsLetter/IsDigit (template names in Regexp.Expand).
#ifndef PROMRELAY_PROXY_RELABEL_UNICODE_H_
#define PROMRELAY_PROXY_RELABEL_UNICODE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace promrelay::relabel::internal {

inline constexpr char32_t kRuneError = 0xFFFD;

struct DecodedRune {
  char32_t rune;  // kRuneError for an invalid sequence
  size_t width;   // bytes consumed; 1 for an invalid sequence (Go's rule)
};

// Decodes the rune at the start of `s` (non-empty) exactly like Go's
// utf8.DecodeRuneInString: overlong forms, surrogates and code points above
// U+10FFFF are invalid and consume one byte.
DecodedRune DecodeRune(std::string_view s);

// Go's utf8.ValidString.
bool IsValidUtf8(std::string_view s);

// Appends the UTF-8 encoding of `r` (a valid scalar value) to `out`.
void AppendRune(char32_t r, std::string& out);

// Go's unicode.ToLower / unicode.ToUpper (simple one-to-one mappings).
char32_t SimpleToLower(char32_t r);
char32_t SimpleToUpper(char32_t r);

// Go's strings.ToLower / strings.ToUpper: appends the case-mapped `s` to
// `out`. Invalid UTF-8 bytes in non-ASCII input become U+FFFD, as Go's
// strings.Map does. Returns false (and appends nothing) when the result
// would equal `s` byte for byte, so callers can reuse the input.
bool ToLowerGo(std::string_view s, std::string& out);
bool ToUpperGo(std::string_view s, std::string& out);

// Go's unicode.IsLetter / unicode.IsDigit.
bool IsLetter(char32_t r);
bool IsDigit(char32_t r);

}  // namespace promrelay::relabel::internal

#endif  // PROMRELAY_PROXY_RELABEL_UNICODE_H_
