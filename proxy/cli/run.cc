#include "proxy/cli/run.h"

#include <iostream>

namespace promrelay::cli {

// Placeholder until the server module lands; replaced by the proxy's run loop.
int RunProxy(const std::vector<std::string>& args) {
  std::cerr << "promrelay: the proxy is not built yet\n";
  return 1;
}

}  // namespace promrelay::cli
