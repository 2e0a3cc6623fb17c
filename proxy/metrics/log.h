// Structured logging for every module: one logfmt line per event on stderr,
//   ts=2024-05-01T10:00:00.123Z level=warn msg="send failed" destination=vm
// with a process-wide minimum level and a rate limiter for events that can
// repeat once per request (for example a destination rejecting every batch).
//
// Never pass secrets (tokens, passwords, Authorization headers) as values.
#ifndef PROMRELAY_PROXY_METRICS_LOG_H_
#define PROMRELAY_PROXY_METRICS_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace promrelay::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn" (or "warning"), "error"; false when unknown.
bool ParseLevel(std::string_view text, Level* level);
std::string_view LevelName(Level level);

void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level);

// One key=value pair. The value is formatted when the field is built.
class Field {
 public:
  Field(std::string_view key, std::string_view value)
      : key_(key), value_(value) {}
  Field(std::string_view key, const char* value) : key_(key), value_(value) {}
  Field(std::string_view key, const std::string& value)
      : key_(key), value_(value) {}
  Field(std::string_view key, bool value)
      : key_(key), value_(value ? "true" : "false") {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T> &&
                                                    !std::is_same_v<T, bool>>>
  Field(std::string_view key, T value) : key_(key) {
    if constexpr (std::is_floating_point_v<T>) {
      value_ = FormatDouble(static_cast<double>(value));
    } else {
      value_ = std::to_string(value);
    }
  }
  Field(std::string_view key, const absl::Status& status)
      : key_(key), value_(status.ToString()) {}
  Field(std::string_view key, absl::Duration d)
      : key_(key), value_(absl::FormatDuration(d)) {}

  std::string_view key() const { return key_; }
  const std::string& value() const { return value_; }

 private:
  static std::string FormatDouble(double v);
  std::string_view key_;
  std::string value_;
};

// Writes one line when `level` is enabled.
void Log(Level level, std::string_view msg,
         std::initializer_list<Field> fields = {});

inline void Debug(std::string_view msg, std::initializer_list<Field> f = {}) {
  Log(Level::kDebug, msg, f);
}
inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) {
  Log(Level::kInfo, msg, f);
}
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) {
  Log(Level::kWarn, msg, f);
}
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) {
  Log(Level::kError, msg, f);
}

// Formats a line without writing it (what Log writes, minus the newline).
std::string FormatLine(absl::Time ts, Level level, std::string_view msg,
                       std::initializer_list<Field> fields);

// Replaces the output (stderr by default) with `sink`, which gets whole
// lines including the trailing newline; nullptr restores stderr. For tests.
void SetSinkForTesting(std::function<void(std::string_view)> sink);

// Lets at most one event through per `interval`; the others are counted and
// reported with the next one that passes. Thread-safe.
//
//   static logging::RateLimiter limiter(absl::Seconds(10));
//   uint64_t suppressed;
//   if (limiter.Allow(&suppressed))
//     logging::Warn("send rejected", {{"destination", name},
//                                     {"suppressed", suppressed}});
class RateLimiter {
 public:
  explicit RateLimiter(absl::Duration interval) : interval_(interval) {}
  // True when this event may be logged; *suppressed (may be null) gets the
  // number of events refused since the last one allowed.
  bool Allow(uint64_t* suppressed);

 private:
  const absl::Duration interval_;
  std::mutex mu_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t suppressed_ = 0;
};

namespace internal {
extern std::atomic<int> min_level;
}  // namespace internal

inline bool Enabled(Level level) {
  return static_cast<int>(level) >=
         internal::min_level.load(std::memory_order_relaxed);
}

}  // namespace promrelay::logging

#endif  // PROMRELAY_PROXY_METRICS_LOG_H_
