// A small strict flag parser: `--name value`, `--name=value`, `--switch`.
// Anything it does not know is an error, so typos never pass silently.
#ifndef PROMRELAY_PROXY_CLI_FLAGS_H_
#define PROMRELAY_PROXY_CLI_FLAGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

namespace promrelay::cli {

struct FlagSpec {
  std::set<std::string> with_value;  // e.g. "config" for --config FILE
  std::set<std::string> switches;    // e.g. "update"
};

struct ParsedFlags {
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
  bool help = false;
  std::string error;  // non-empty: usage error to print, exit 2
};

ParsedFlags ParseFlags(const std::vector<std::string>& args,
                       const FlagSpec& spec);

}  // namespace promrelay::cli

#endif  // PROMRELAY_PROXY_CLI_FLAGS_H_
