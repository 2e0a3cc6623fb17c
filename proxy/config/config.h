// promrelay's configuration: the YAML schema of DESIGN.md loaded into an
// immutable, validated Config (relabel rules compiled, secrets resolved).
#ifndef PROMRELAY_PROXY_CONFIG_CONFIG_H_
#define PROMRELAY_PROXY_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/relabel/relabel.h"

namespace promrelay::config {

struct ServerTls {
  std::string cert_file;
  std::string key_file;
};

// Ingress credentials for gateway mode (planned in DESIGN.md): a request that
// presents them gets `inject_labels` set on every series.
struct ClientAuth {
  std::string name;
  std::string bearer_token;  // resolved from bearer_token_file if given
  std::string username;      // basic_auth
  std::string password;      // resolved from password_file if given
  std::map<std::string, std::string> inject_labels;
  // Absolute paths of the secret files, if used, so a reload re-reads them.
  std::string bearer_token_file;
  std::string password_file;
  bool has_basic_auth() const { return !username.empty(); }
};

struct ServerConfig {
  std::string listen_address = "0.0.0.0:9201";
  int io_threads = 0;                              // 0: one per core
  uint64_t max_request_bytes = 32ull << 20;        // compressed body
  uint64_t max_decompressed_bytes = 128ull << 20;  // after snappy
  uint64_t max_series_per_request = 200000;
  uint64_t max_labels_per_series = 256;
  uint64_t max_label_name_length = 1024;
  uint64_t max_label_value_length = 16384;
  absl::Duration shutdown_timeout = absl::Seconds(30);
  std::optional<ServerTls> tls;
  std::vector<ClientAuth> clients;
};

struct ClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
  bool insecure_skip_verify = false;
};

struct BasicAuth {
  std::string username;
  std::string password;       // resolved from password_file if that was given
  std::string password_file;  // kept so a reload re-reads a rotated secret
};

// Prometheus queue_config names; promrelay's shard count is fixed.
struct QueueConfig {
  int shards = 4;
  // The labels whose values pick a series' shard; empty = every label (as
  // Prometheus shards). A series that has none of them is sharded by all of
  // its labels. By target and metric name by default: a scrape's series of
  // one metric then share a shard, so a record holds runs of near-identical
  // series that snappy compresses far better (and faster) than a random mix.
  std::vector<std::string> shard_by = {"job", "instance", "__name__"};
  int max_samples_per_send = 2000;
  absl::Duration batch_send_deadline = absl::Seconds(5);
  absl::Duration min_backoff = absl::Milliseconds(30);
  absl::Duration max_backoff = absl::Seconds(5);
  bool retry_on_http_429 = true;
  // Bound of the in-memory queue (used when `storage` is absent), per
  // destination; past it on_full applies as for the disk queue.
  uint64_t max_memory_bytes = 256ull << 20;
};

enum class OnFull { kReject, kDropOldest };
enum class FsyncPolicy { kAlways, kInterval, kNever };

struct StorageConfig {
  std::string path;
  uint64_t max_bytes = 1ull << 30;
  OnFull on_full = OnFull::kReject;
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  absl::Duration fsync_interval = absl::Seconds(1);
  uint64_t segment_bytes = 64ull << 20;
};

struct Destination {
  std::string name;
  std::string url;
  std::optional<BasicAuth> basic_auth;
  std::string bearer_token;  // resolved from bearer_token_file if given
  std::string bearer_token_file;
  std::map<std::string, std::string> headers;
  ClientTls tls_config;
  absl::Duration remote_timeout = absl::Seconds(30);
  relabel::RuleSet write_relabel_configs;
  std::vector<std::string> forbidden_labels;
  QueueConfig queue_config;
  OnFull on_full = OnFull::kReject;      // storage.on_full, or reject in memory
  std::optional<StorageConfig> storage;  // absent: memory queue
};

struct Config {
  std::string source_path;
  relabel::NameScheme name_scheme = relabel::NameScheme::kUtf8;
  ServerConfig server;
  relabel::RuleSet relabel_configs;  // global, applied first
  std::vector<Destination> remote_write;
};

// One problem found while loading: "<line>:<col>: <field path>: <message>".
struct ConfigError {
  int line = 0;  // 1-based; 0 when not tied to a place in the file
  int column = 0;
  std::string field;  // e.g. remote_write[0].write_relabel_configs[1].regex
  std::string message;
  std::string ToString() const;
};

struct LoadOptions {
  // false: secret files (password_file, bearer_token_file) are not read and
  // TLS files are not checked. For `test-rules` and `check-config
  // --syntax-only`, which must work where the secrets are not mounted.
  bool read_files = true;
};

// Parses YAML text. Every error found is returned (not just the first), each
// naming its line and field path, sorted by line; on error the Status is
// InvalidArgument and repeats the first error (and all of them when `errors`
// is null). `${VAR}` in a scalar value is replaced by the environment
// variable's value after parsing (so line numbers stay right and a value
// cannot change the YAML structure); an unset variable is an error, `$$` is
// a literal `$`. Inside relabel rules `$` belongs to the template syntax, so
// nothing is expanded there. Relative file paths are resolved against the
// directory of `source_path`.
absl::StatusOr<std::shared_ptr<const Config>> LoadFromString(
    std::string_view yaml, std::string_view source_path,
    std::vector<ConfigError>* errors, const LoadOptions& options = {});
absl::StatusOr<std::shared_ptr<const Config>> LoadFromFile(
    const std::string& path, std::vector<ConfigError>* errors,
    const LoadOptions& options = {});

// Parses "30ms", "1m30s", "1h" (Prometheus model.Duration syntax).
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);
// Parses "512MiB", "1GiB", "100MB", "1024" (bytes). KB/MB/GB/TB are powers
// of 1000, KiB/MiB/GiB/TiB powers of 1024.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);
// Formats a duration the way Prometheus prints one ("1m30s", "0s").
std::string DurationString(absl::Duration d);
// Replaces `${NAME}` with the environment variable NAME and `$$` with `$`;
// any other `$` stays literal. Errors name the variable, never a value.
absl::StatusOr<std::string> ExpandEnv(std::string_view text);

}  // namespace promrelay::config

#endif  // PROMRELAY_PROXY_CONFIG_CONFIG_H_
