#include "proxy/cli/flags.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace promrelay::cli {

ParsedFlags ParseFlags(const std::vector<std::string>& args,
                       const FlagSpec& spec) {
  ParsedFlags out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "-") || arg == "-" || arg == "--") {
      out.error = absl::StrCat("unexpected argument \"", arg, "\"");
      return out;
    }
    // Both -flag and --flag, as Go programs accept.
    std::string name = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
    std::string value;
    bool inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (spec.switches.count(name)) {
      if (inline_value) {
        out.error = absl::StrCat("flag --", name, " takes no value");
        return out;
      }
      out.switches.insert(name);
      continue;
    }
    if (!spec.with_value.count(name)) {
      out.error = absl::StrCat("unknown flag \"", arg, "\"");
      return out;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        out.error = absl::StrCat("flag --", name, " needs a value");
        return out;
      }
      value = args[++i];
    }
    if (out.values.count(name)) {
      out.error = absl::StrCat("flag --", name, " is given twice");
      return out;
    }
    if (value.empty()) {
      out.error = absl::StrCat("flag --", name, " needs a non-empty value");
      return out;
    }
    out.values[name] = value;
  }
  return out;
}

}  // namespace promrelay::cli
