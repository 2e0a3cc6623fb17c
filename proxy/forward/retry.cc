#include "proxy/forward/retry.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace promrelay::forward {

Backoff::Backoff(absl::Duration min, absl::Duration max, uint64_t seed)
    : min_(std::max(min, absl::Milliseconds(1))),
      max_(std::max(max, min_)),
      current_(min_),
      rng_state_(seed) {}

absl::Duration Backoff::Next() {
  absl::Duration d = current_;
  current_ = std::min(current_ * 2, max_);
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  // 53 random bits -> [0, 1), then [0.5, 1).
  const double unit = static_cast<double>(z >> 11) * 0x1.0p-53;
  return d * (0.5 + 0.5 * unit);
}

void Backoff::Reset() { current_ = min_; }

std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now) {
  absl::string_view v =
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size()));
  if (v.empty()) return std::nullopt;
  if (absl::ascii_isdigit(static_cast<unsigned char>(v[0]))) {
    uint64_t secs = 0;
    if (!absl::SimpleAtoi(v, &secs)) return std::nullopt;
    // Anything near the int64 range is nonsense; clamp before converting.
    return absl::Seconds(
        static_cast<int64_t>(std::min<uint64_t>(secs, 1u << 30)));
  }
  // IMF-fixdate, RFC 850 and asctime, the three forms RFC 9110 accepts.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",
      "%A, %d-%b-%y %H:%M:%S GMT",
      "%a %b %e %H:%M:%S %Y",
  };
  std::string text(v);
  for (const char* format : kFormats) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &t, &err)) {
      return t > now ? t - now : absl::ZeroDuration();
    }
  }
  return std::nullopt;
}

Verdict Classify(int http_status, bool retry_on_http_429) {
  if (http_status == 0) return Verdict::kRetry;
  if (http_status >= 200 && http_status < 300) return Verdict::kSuccess;
  if (http_status >= 500) return Verdict::kRetry;
  if (http_status == 429) {
    return retry_on_http_429 ? Verdict::kRetry : Verdict::kDrop;
  }
  // 1xx/3xx (redirects are not followed) and other 4xx: resending the same
  // bytes cannot succeed.
  return Verdict::kDrop;
}

std::string HttpErrorReason(int http_status) {
  if (http_status == 429) return "http_429";
  if (http_status >= 400 && http_status < 500) return "http_4xx";
  if (http_status >= 500 && http_status < 600) return "http_5xx";
  return "http_other";
}

}  // namespace promrelay::forward
