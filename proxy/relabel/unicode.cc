#include "proxy/relabel/unicode.h"

#include <algorithm>
#include <cstdint>

namespace promrelay::relabel::internal {
namespace {

struct CodePointPair {
  char32_t from;
  char32_t to;
};
struct CodePointRange {
  char32_t lo;
  char32_t hi;
};

#include "proxy/relabel/unicode_tables.inc"

template <size_t N>
char32_t LookupPair(const CodePointPair (&table)[N], char32_t r) {
  const CodePointPair* end = table + N;
  const CodePointPair* it = std::lower_bound(
      table, end, r,
      [](const CodePointPair& p, char32_t key) { return p.from < key; });
  if (it != end && it->from == r) return it->to;
  return r;
}

template <size_t N>
bool InRanges(const CodePointRange (&table)[N], char32_t r) {
  const CodePointRange* end = table + N;
  const CodePointRange* it = std::upper_bound(
      table, end, r,
      [](char32_t key, const CodePointRange& p) { return key < p.lo; });
  if (it == table) return false;
  --it;
  return r <= it->hi;
}

inline bool IsCont(unsigned char c) { return (c & 0xC0) == 0x80; }

template <bool kUpper>
bool MapCase(std::string_view s, std::string& out) {
  bool ascii = true;
  bool changes = false;
  for (unsigned char c : s) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    if (kUpper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z')) {
      changes = true;
    }
  }
  if (ascii) {
    if (!changes) return false;
    size_t base = out.size();
    out.append(s);
    for (size_t i = base; i < out.size(); ++i) {
      char& c = out[i];
      if (kUpper) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      } else {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
    }
    return true;
  }
  // Non-ASCII: first find whether anything changes (Go returns the input
  // unchanged in that case), then map rune by rune.
  size_t first_change = s.size();
  for (size_t i = 0; i < s.size();) {
    DecodedRune d = DecodeRune(s.substr(i));
    if (d.rune == kRuneError && d.width == 1) {
      first_change = i;
      break;
    }
    char32_t m = kUpper ? SimpleToUpper(d.rune) : SimpleToLower(d.rune);
    if (m != d.rune) {
      first_change = i;
      break;
    }
    i += d.width;
  }
  if (first_change == s.size()) return false;
  out.append(s.substr(0, first_change));
  for (size_t i = first_change; i < s.size();) {
    DecodedRune d = DecodeRune(s.substr(i));
    char32_t m = kUpper ? SimpleToUpper(d.rune) : SimpleToLower(d.rune);
    AppendRune(m, out);
    i += d.width;
  }
  return true;
}

}  // namespace

DecodedRune DecodeRune(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  unsigned char b0 = p[0];
  if (b0 < 0x80) return {b0, 1};
  constexpr DecodedRune kInvalid{kRuneError, 1};
  if (b0 < 0xC2) return kInvalid;  // continuation byte or overlong 2-byte lead
  if (b0 < 0xE0) {
    if (n < 2 || !IsCont(p[1])) return kInvalid;
    return {static_cast<char32_t>((b0 & 0x1F) << 6 | (p[1] & 0x3F)), 2};
  }
  if (b0 < 0xF0) {
    // Go's accept ranges: E0 needs A0..BF (no overlong), ED needs 80..9F
    // (no surrogates).
    unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    if (n < 2 || p[1] < lo || p[1] > hi) return kInvalid;
    if (n < 3 || !IsCont(p[2])) return kInvalid;
    return {static_cast<char32_t>((b0 & 0x0F) << 12 | (p[1] & 0x3F) << 6 |
                                  (p[2] & 0x3F)),
            3};
  }
  if (b0 < 0xF5) {
    unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (n < 2 || p[1] < lo || p[1] > hi) return kInvalid;
    if (n < 3 || !IsCont(p[2])) return kInvalid;
    if (n < 4 || !IsCont(p[3])) return kInvalid;
    return {static_cast<char32_t>((b0 & 0x07) << 18 | (p[1] & 0x3F) << 12 |
                                  (p[2] & 0x3F) << 6 | (p[3] & 0x3F)),
            4};
  }
  return kInvalid;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    DecodedRune d = DecodeRune(s.substr(i));
    if (d.rune == kRuneError && d.width == 1) return false;
    i += d.width;
  }
  return true;
}

void AppendRune(char32_t r, std::string& out) {
  if (r < 0x80) {
    out.push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (r >> 6)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (r >> 12)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (r >> 18)));
    out.push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

char32_t SimpleToLower(char32_t r) {
  if (r < 0x80) return (r >= 'A' && r <= 'Z') ? r + ('a' - 'A') : r;
  return LookupPair(kToLower, r);
}

char32_t SimpleToUpper(char32_t r) {
  if (r < 0x80) return (r >= 'a' && r <= 'z') ? r - ('a' - 'A') : r;
  return LookupPair(kToUpper, r);
}

bool ToLowerGo(std::string_view s, std::string& out) {
  return MapCase<false>(s, out);
}

bool ToUpperGo(std::string_view s, std::string& out) {
  return MapCase<true>(s, out);
}

bool IsLetter(char32_t r) {
  if (r < 0x80) return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
  return InRanges(kLetterRanges, r);
}

bool IsDigit(char32_t r) {
  if (r < 0x80) return r >= '0' && r <= '9';
  return InRanges(kDigitRanges, r);
}

}  // namespace promrelay::relabel::internal
