// Retry policy pieces of the sender: exponential backoff with jitter,
// Retry-After parsing, and the classification of a send outcome.
#ifndef PROMRELAY_PROXY_FORWARD_RETRY_H_
#define PROMRELAY_PROXY_FORWARD_RETRY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace promrelay::forward {

// Delays of min, 2*min, 4*min ... capped at max, each one drawn uniformly
// from [d/2, d] so that shards (and replicas) that failed together do not
// retry together.
class Backoff {
 public:
  Backoff(absl::Duration min, absl::Duration max, uint64_t seed);
  absl::Duration Next();
  void Reset();

 private:
  absl::Duration min_, max_, current_;
  // SplitMix64: jitter needs no better, and a Backoff is made per batch,
  // so seeding must cost nothing (a mersenne twister fills 2.5 KB).
  uint64_t rng_state_;
};

// Parses a Retry-After value: delta-seconds ("120") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT", also the obsolete RFC 850 and asctime
// forms). Returns the delay from `now` (zero for a date in the past), or
// nullopt when the value is malformed.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now);

// What to do with a batch after one attempt.
enum class Verdict { kSuccess, kRetry, kDrop };

// `http_status` is 0 when no response was received (network error,
// timeout, TLS failure): those are retried.
Verdict Classify(int http_status, bool retry_on_http_429);

// Reason label for promrelay_send_errors_total from a status class:
// "http_429", "http_4xx", "http_5xx" or "http_other".
std::string HttpErrorReason(int http_status);

}  // namespace promrelay::forward

#endif  // PROMRELAY_PROXY_FORWARD_RETRY_H_
