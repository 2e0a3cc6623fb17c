// Helpers for the config tests: load YAML text, find an error, temp files.
#ifndef PROMRELAY_TESTS_CONFIG_TEST_UTIL_H_
#define PROMRELAY_TESTS_CONFIG_TEST_UTIL_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/config/config.h"

namespace promrelay::config::testing {

struct Loaded {
  std::shared_ptr<const Config> config;
  std::vector<ConfigError> errors;
  std::string status;

  bool ok() const { return config != nullptr; }
  // Every error, one per line, for failure messages.
  std::string Dump() const {
    std::ostringstream out;
    for (const ConfigError& e : errors) out << e.ToString() << "\n";
    return out.str();
  }
  // True when some error is at `line` for `field` and contains `text`.
  bool Has(int line, const std::string& field, const std::string& text) const {
    for (const ConfigError& e : errors) {
      if ((line == 0 || e.line == line) && e.field == field &&
          e.message.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  bool AnyContains(const std::string& text) const {
    for (const ConfigError& e : errors) {
      if (e.ToString().find(text) != std::string::npos) return true;
    }
    return status.find(text) != std::string::npos;
  }
};

inline Loaded Load(const std::string& yaml,
                   const std::string& path = "test.yaml",
                   LoadOptions options = {}) {
  Loaded out;
  auto result = LoadFromString(yaml, path, &out.errors, options);
  if (result.ok()) {
    out.config = *result;
  } else {
    out.status = std::string(result.status().message());
  }
  return out;
}

// A temporary directory removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "promrelay-test-XXXXXX")
            .string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::string path_;
};

// Sets an environment variable for the scope, restoring the old state.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old) old_ = old;
    had_ = old != nullptr;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::string old_;
  bool had_ = false;
};

// The smallest valid config, for tests that add one section.
inline const char kMinimalDestination[] =
    "remote_write:\n"
    "  - name: vm\n"
    "    url: http://localhost:8428/api/v1/write\n";

}  // namespace promrelay::config::testing

#endif  // PROMRELAY_TESTS_CONFIG_TEST_UTIL_H_
