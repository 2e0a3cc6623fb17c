#include "proxy/metrics/log.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"

namespace promrelay::logging {

namespace internal {
std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
}  // namespace internal

namespace {

std::mutex& SinkMutex() {
  static std::mutex* mu = new std::mutex();
  return *mu;
}

std::function<void(std::string_view)>& Sink() {
  static auto* sink = new std::function<void(std::string_view)>();
  return *sink;
}

// logfmt: bare when the value is non-empty and has no space, '=', '"' or
// control character; otherwise quoted with \" \\ \n \t escapes.
void AppendValue(std::string& out, std::string_view v) {
  bool bare = !v.empty();
  for (unsigned char c : v) {
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) {
    out += v;
    return;
  }
  out += '"';
  for (unsigned char c : v) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

bool ParseLevel(std::string_view text, Level* level) {
  std::string t = absl::AsciiStrToLower(std::string(text));
  if (t == "debug") {
    *level = Level::kDebug;
  } else if (t == "info") {
    *level = Level::kInfo;
  } else if (t == "warn" || t == "warning") {
    *level = Level::kWarn;
  } else if (t == "error") {
    *level = Level::kError;
  } else {
    return false;
  }
  return true;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void SetLevel(Level level) {
  internal::min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

Level GetLevel() {
  return static_cast<Level>(
      internal::min_level.load(std::memory_order_relaxed));
}

std::string Field::FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

std::string FormatLine(absl::Time ts, Level level, std::string_view msg,
                       std::initializer_list<Field> fields) {
  std::string line;
  line.reserve(128);
  line += "ts=";
  line += absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", ts, absl::UTCTimeZone());
  line += " level=";
  line += LevelName(level);
  line += " msg=";
  AppendValue(line, msg);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key();
    line += '=';
    AppendValue(line, f.value());
  }
  return line;
}

void Log(Level level, std::string_view msg,
         std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  std::string line = FormatLine(absl::Now(), level, msg, fields);
  line += '\n';
  std::lock_guard<std::mutex> lock(SinkMutex());
  if (Sink()) {
    Sink()(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

void SetSinkForTesting(std::function<void(std::string_view)> sink) {
  std::lock_guard<std::mutex> lock(SinkMutex());
  Sink() = std::move(sink);
}

bool RateLimiter::Allow(uint64_t* suppressed) {
  absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_ < interval_) {
    ++suppressed_;
    return false;
  }
  last_ = now;
  if (suppressed != nullptr) *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace promrelay::logging
