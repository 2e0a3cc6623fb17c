#include "proxy/cli/cli.h"

#include <iostream>
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
  --config FILE   the configuration file (required)
  --help          show this help
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
  // Run mode: only the flags RunProxy understands.
  bool have_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out << kRunUsage;
      return kExitOk;
    }
    if (a == "--config" || a == "-config") {
      if (i + 1 >= args.size())
        return UsageError("--config needs a value", err);
      ++i;
      if (have_config) return UsageError("--config is given twice", err);
      have_config = true;
      continue;
    }
    if (absl::StartsWith(a, "--config=") || absl::StartsWith(a, "-config=")) {
      if (have_config) return UsageError("--config is given twice", err);
      have_config = true;
      continue;
    }
    return UsageError(absl::StartsWith(a, "-")
                          ? "unknown flag \"" + a + "\""
                          : "unexpected argument \"" + a + "\"",
                      err);
  }
  if (!have_config) return UsageError("--config FILE is required", err);
  return RunProxy(args);
}

}  // namespace promrelay::cli
