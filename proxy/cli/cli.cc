#include "proxy/cli/cli.h"

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "proxy/cli/run.h"

#ifndef PROMRELAY_VERSION
#define PROMRELAY_VERSION "unknown"
#endif

namespace promrelay::cli {
namespace {

constexpr char kUsage[] =
    R"(promrelay: a Prometheus remote_write relabeling proxy.

Usage:
  promrelay --config FILE                 run the proxy
  promrelay check-config --config FILE    validate a configuration file
  promrelay test-rules --config FILE [--input FILE] [--golden FILE [--update]]
                                          show what each destination receives
  promrelay --version                     print the version
  promrelay --help                        show this help

Run 'promrelay <command> --help' for a command's flags.
)";

constexpr char kRunUsage[] =
    R"(Usage: promrelay --config FILE

Runs the proxy: receives remote_write requests, relabels every series and
forwards each destination its share. SIGHUP or POST /-/reload re-reads FILE.

Flags:
  --config FILE       the configuration file (required)
  --log-level LEVEL   debug, info, warn or error (default info; also
                      PROMRELAY_LOG_LEVEL)
  --config-watch-interval DURATION
                      check FILE this often and reload it when its content
                      changed (e.g. 30s for a Kubernetes ConfigMap; at least
                      1s; default 0s = off)
  --help              show this help
)";

int UsageError(const std::string& what, std::ostream& err) {
  err << "promrelay: " << what << "\nRun 'promrelay --help' for usage.\n";
  return kExitUsage;
}

}  // namespace

std::string Version() { return PROMRELAY_VERSION; }

int Main(const std::vector<std::string>& args, std::istream& in,
         std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  const std::string& first = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (first == "check-config") return CheckConfig(rest, out, err);
  if (first == "test-rules") return TestRules(rest, in, out, err);
  if (first == "help" || first == "--help" || first == "-h") {
    if (args.size() > 1) return UsageError("--help takes no arguments", err);
    out << kUsage;
    return kExitOk;
  }
  if (first == "version" || first == "--version") {
    if (args.size() > 1) return UsageError("--version takes no arguments", err);
    out << "promrelay " << Version() << "\n";
    return kExitOk;
  }
  if (!absl::StartsWith(first, "-")) {
    return UsageError("unknown command \"" + first + "\"", err);
  }
  // Run mode: only the flags RunProxy understands (run.cc parses them).
  const std::set<std::string> kRunValueFlags = {
      "config", "log-level", "log.level", "config-watch-interval"};
  std::set<std::string> seen;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out << kRunUsage;
      return kExitOk;
    }
    if (!absl::StartsWith(a, "-")) {
      return UsageError("unexpected argument \"" + a + "\"", err);
    }
    std::string name = a.substr(absl::StartsWith(a, "--") ? 2 : 1);
    bool inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (!kRunValueFlags.count(name)) {
      return UsageError("unknown flag \"" + a + "\"", err);
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        return UsageError("--" + name + " needs a value", err);
      }
      ++i;
    }
    std::string key = name == "log.level" ? "log-level" : name;
    if (!seen.insert(key).second) {
      return UsageError("--" + name + " is given twice", err);
    }
  }
  if (!seen.count("config")) {
    return UsageError("--config FILE is required", err);
  }
  return RunProxy(args);
}

}  // namespace promrelay::cli
