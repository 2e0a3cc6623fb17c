// The `promrelay` command line: subcommand dispatch, `check-config` and
// `test-rules`. Every entry point takes its streams so tests run it in
// process; main.cpp only forwards argv.
#ifndef PROMRELAY_PROXY_CLI_CLI_H_
#define PROMRELAY_PROXY_CLI_CLI_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "proxy/config/config.h"

namespace promrelay::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // invalid config, bad input, diff
inline constexpr int kExitUsage = 2;    // unknown flag or command

// `args` excludes the program name. `promrelay --config FILE` is handed to
// RunProxy (run.h).
int Main(const std::vector<std::string>& args, std::istream& in,
         std::ostream& out, std::ostream& err);

// `promrelay check-config --config FILE [--syntax-only]`.
int CheckConfig(const std::vector<std::string>& args, std::ostream& out,
                std::ostream& err);

// `promrelay test-rules --config FILE [--input FILE] [--golden FILE
// [--update]]`; reads `in` when there is no --input.
int TestRules(const std::vector<std::string>& args, std::istream& in,
              std::ostream& out, std::ostream& err);

std::string Version();

// Prints config errors as "FILE:LINE:COL: FIELD: MESSAGE" lines.
void PrintConfigErrors(const std::string& path,
                       const std::vector<config::ConfigError>& errors,
                       std::ostream& err);

}  // namespace promrelay::cli

#endif  // PROMRELAY_PROXY_CLI_CLI_H_
