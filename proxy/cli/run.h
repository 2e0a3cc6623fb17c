// `promrelay --config FILE`: runs the proxy until SIGTERM/SIGINT.
#ifndef PROMRELAY_PROXY_CLI_RUN_H_
#define PROMRELAY_PROXY_CLI_RUN_H_

#include <string>
#include <vector>

namespace promrelay::cli {

// `args` are the command-line arguments after the program name. Returns the
// process exit code.
int RunProxy(const std::vector<std::string>& args);

}  // namespace promrelay::cli

#endif  // PROMRELAY_PROXY_CLI_RUN_H_
