// promrelay's entry point; everything else lives in proxy/cli.
#include <iostream>
#include <string>
#include <vector>

#include "proxy/cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return promrelay::cli::Main(args, std::cin, std::cout, std::cerr);
}
