// `promrelay check-config`: load the config the way the proxy would and say
// either what it will do or everything that is wrong with it.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "proxy/cli/cli.h"
#include "proxy/cli/flags.h"
#include "proxy/config/config.h"

namespace promrelay::cli {
namespace {

constexpr char kUsage[] =
    R"(Usage: promrelay check-config --config FILE [--syntax-only]

Validates a promrelay configuration file. Exits 0 and prints a summary when
it is valid; otherwise prints every error as FILE:LINE:COLUMN: FIELD: MESSAGE
and exits 1.

Flags:
  --config FILE    the configuration file (required)
  --syntax-only    do not read secret files (password_file, bearer_token_file)
                   or check that TLS files exist; for CI where they are not
                   mounted
  --help           show this help
)";

std::string Plural(size_t n, absl::string_view word) {
  return absl::StrCat(n, " ", word, n == 1 ? "" : "s");
}

std::string Bytes(uint64_t n) {
  static constexpr struct {
    uint64_t factor;
    const char* unit;
  } kUnits[] = {{1ULL << 40, "TiB"},
                {1ULL << 30, "GiB"},
                {1ULL << 20, "MiB"},
                {1ULL << 10, "KiB"}};
  for (const auto& u : kUnits) {
    if (n >= u.factor && n % u.factor == 0) {
      return absl::StrCat(n / u.factor, u.unit);
    }
  }
  return absl::StrCat(n, "B");
}

// Query strings can carry tokens; a summary has no use for them.
std::string UrlForDisplay(const std::string& url) {
  size_t q = url.find_first_of("?#");
  return q == std::string::npos ? url : url.substr(0, q) + "?…";
}

}  // namespace

// Prints `errors` as "FILE:LINE:COL: FIELD: MESSAGE" lines.
void PrintConfigErrors(const std::string& path,
                       const std::vector<config::ConfigError>& errors,
                       std::ostream& err) {
  for (const config::ConfigError& e : errors) {
    err << path << ":" << (e.line > 0 ? "" : " ") << e.ToString() << "\n";
  }
}

int CheckConfig(const std::vector<std::string>& args, std::ostream& out,
                std::ostream& err) {
  ParsedFlags flags = ParseFlags(args, FlagSpec{{"config"}, {"syntax-only"}});
  if (flags.help) {
    out << kUsage;
    return kExitOk;
  }
  if (flags.error.empty() && !flags.values.count("config")) {
    flags.error = "--config FILE is required";
  }
  if (!flags.error.empty()) {
    err << "promrelay check-config: " << flags.error
        << "\nRun 'promrelay check-config --help' for usage.\n";
    return kExitUsage;
  }
  const std::string& path = flags.values["config"];
  config::LoadOptions options;
  options.read_files = !flags.switches.count("syntax-only");
  std::vector<config::ConfigError> errors;
  auto loaded = config::LoadFromFile(path, &errors, options);
  if (!loaded.ok()) {
    if (errors.empty()) {
      err << loaded.status().message() << "\n";
    } else {
      PrintConfigErrors(path, errors, err);
    }
    err << path << ": " << Plural(std::max<size_t>(errors.size(), 1), "error")
        << "\n";
    return kExitFailure;
  }
  const config::Config& c = **loaded;
  out << "config OK: " << path
      << (options.read_files ? ""
                             : " (syntax only: secret and TLS files not read)")
      << "\n";
  out << "  metric_name_validation_scheme: "
      << (c.name_scheme == relabel::NameScheme::kLegacy ? "legacy" : "utf8")
      << "\n";
  out << "  server: listen " << c.server.listen_address
      << (c.server.tls ? " (TLS)" : "") << ", "
      << Plural(c.server.clients.size(), "client") << "\n";
  out << "  relabel_configs: " << Plural(c.relabel_configs.size(), "rule")
      << "\n";
  out << "  remote_write: " << Plural(c.remote_write.size(), "destination")
      << "\n";
  for (const config::Destination& d : c.remote_write) {
    std::string auth = d.basic_auth ? "basic_auth"
                       : !d.bearer_token_file.empty() || !d.bearer_token.empty()
                           ? "bearer_token"
                           : "none";
    out << "    " << d.name << ": " << UrlForDisplay(d.url) << "\n";
    out << "      write_relabel_configs: "
        << Plural(d.write_relabel_configs.size(), "rule")
        << ", forbidden_labels: " << d.forbidden_labels.size()
        << ", auth: " << auth << "\n";
    if (d.storage) {
      out << "      queue: disk " << d.storage->path << " (max "
          << Bytes(d.storage->max_bytes) << ", on_full "
          << (d.storage->on_full == config::OnFull::kReject ? "reject"
                                                            : "drop_oldest")
          << ", fsync "
          << (d.storage->fsync == config::FsyncPolicy::kAlways     ? "always"
              : d.storage->fsync == config::FsyncPolicy::kInterval ? "interval"
                                                                   : "never")
          << "), " << d.queue_config.shards << " shards";
    } else {
      out << "      queue: memory (max "
          << Bytes(d.queue_config.max_memory_bytes) << "), "
          << d.queue_config.shards << " shards";
    }
    out << " by "
        << (d.queue_config.shard_by.empty()
                ? std::string("every label")
                : absl::StrJoin(d.queue_config.shard_by, ", "))
        << "\n";
  }
  return kExitOk;
}

}  // namespace promrelay::cli
