// The YAML loader: every key's happy path, and every class of error with the
// line, column and field path it reports.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/config/config.h"
#include "tests/config/test_util.h"

namespace promrelay::config {
namespace {

using testing::kMinimalDestination;
using testing::Load;
using testing::Loaded;
using testing::ScopedEnv;
using testing::TempDir;

TEST_CASE("every key, happy path", "[loader]") {
  TempDir dir;
  dir.Write("secrets/gc-password", "s3cret-password\n");
  dir.Write("secrets/vm-token", "  vm-token-value \n");
  dir.Write("secrets/client-b", "client-b-token\n");
  dir.Write("secrets/client-c", "client-c-pass\n");
  dir.Write("tls/server.crt", "cert");
  dir.Write("tls/server.key", "key");
  dir.Write("tls/ca.pem", "ca");
  dir.Write("tls/client.crt", "cert");
  dir.Write("tls/client.key", "key");
  ScopedEnv id("PROMRELAY_TEST_INSTANCE", "123456");
  ScopedEnv org("PROMRELAY_TEST_ORG", "tenant-1");
  std::string yaml = R"(server:
  listen_address: 127.0.0.1:19201
  io_threads: 3
  max_request_bytes: 16MiB
  max_decompressed_bytes: 64MiB
  max_series_per_request: 1000
  max_labels_per_series: 64
  max_label_name_length: 128
  max_label_value_length: 4096
  shutdown_timeout: 1m30s
  tls:
    cert_file: tls/server.crt
    key_file: tls/server.key
  clients:
    - name: cluster-a
      bearer_token: token-a
      inject_labels: {cluster_id: a, region: eu}
    - name: cluster-b
      bearer_token_file: secrets/client-b
    - name: cluster-c
      basic_auth:
        username: c
        password_file: secrets/client-c
    - name: cluster-d
      basic_auth: {username: d, password: dpass}
global:
  metric_name_validation_scheme: legacy
relabel_configs:
  - source_labels: [__name__]
    regex: go_.*
    action: drop
remote_write:
  - name: grafana-cloud
    url: https://prometheus-prod-01.grafana.net/api/prom/push
    basic_auth:
      username: ${PROMRELAY_TEST_INSTANCE}
      password_file: secrets/gc-password
    headers:
      X-Scope-OrgID: ${PROMRELAY_TEST_ORG}
      X-Extra: "$$literal"
    tls_config:
      ca_file: tls/ca.pem
      cert_file: tls/client.crt
      key_file: tls/client.key
      server_name: grafana.example
      insecure_skip_verify: true
    remote_timeout: 10s
    write_relabel_configs:
      - source_labels: [job]
        regex: shuttle|node-exporter
        action: keep
      - regex: project_id|service_id
        action: labeldrop
    forbidden_labels: [project_id, service_id]
    queue_config:
      shards: 8
      max_samples_per_send: 500
      batch_send_deadline: 2s
      min_backoff: 50ms
      max_backoff: 10s
      retry_on_http_429: false
      max_memory_bytes: 64MiB
      shard_by: [instance]
    storage:
      path: queues/gc
      max_bytes: 2GiB
      on_full: drop_oldest
      fsync: always
      fsync_interval: 250ms
      segment_bytes: 16MiB
  - name: vm_2
    url: http://[::1]:8428/api/v1/write?extra_label=a
    bearer_token_file: secrets/vm-token
  - name: vm-3
    url: http://vm:8428/api/v1/write
    bearer_token: inline-token
)";
  std::string path = dir.Write("promrelay.yaml", yaml);
  std::vector<ConfigError> errors;
  auto loaded = LoadFromFile(path, &errors);
  for (const auto& e : errors) UNSCOPED_INFO(e.ToString());
  REQUIRE(loaded.ok());
  const Config& c = **loaded;
  CHECK(c.source_path == path);
  CHECK(c.name_scheme == relabel::NameScheme::kLegacy);

  const ServerConfig& s = c.server;
  CHECK(s.listen_address == "127.0.0.1:19201");
  CHECK(s.io_threads == 3);
  CHECK(s.max_request_bytes == 16ull << 20);
  CHECK(s.max_decompressed_bytes == 64ull << 20);
  CHECK(s.max_series_per_request == 1000);
  CHECK(s.max_labels_per_series == 64);
  CHECK(s.max_label_name_length == 128);
  CHECK(s.max_label_value_length == 4096);
  CHECK(s.shutdown_timeout == absl::Seconds(90));
  REQUIRE(s.tls.has_value());
  CHECK(s.tls->cert_file == dir.path() + "/tls/server.crt");
  CHECK(s.tls->key_file == dir.path() + "/tls/server.key");
  REQUIRE(s.clients.size() == 4);
  CHECK(s.clients[0].name == "cluster-a");
  CHECK(s.clients[0].bearer_token == "token-a");
  CHECK_FALSE(s.clients[0].has_basic_auth());
  CHECK(s.clients[0].inject_labels ==
        std::map<std::string, std::string>{{"cluster_id", "a"},
                                           {"region", "eu"}});
  CHECK(s.clients[1].bearer_token == "client-b-token");
  CHECK(s.clients[1].bearer_token_file == dir.path() + "/secrets/client-b");
  CHECK(s.clients[2].has_basic_auth());
  CHECK(s.clients[2].username == "c");
  CHECK(s.clients[2].password == "client-c-pass");
  CHECK(s.clients[2].password_file == dir.path() + "/secrets/client-c");
  CHECK(s.clients[3].username == "d");
  CHECK(s.clients[3].password == "dpass");

  CHECK(c.relabel_configs.size() == 1);
  REQUIRE(c.remote_write.size() == 3);
  const Destination& gc = c.remote_write[0];
  CHECK(gc.name == "grafana-cloud");
  CHECK(gc.url == "https://prometheus-prod-01.grafana.net/api/prom/push");
  REQUIRE(gc.basic_auth.has_value());
  CHECK(gc.basic_auth->username == "123456");
  CHECK(gc.basic_auth->password == "s3cret-password");
  CHECK(gc.basic_auth->password_file == dir.path() + "/secrets/gc-password");
  CHECK(gc.bearer_token.empty());
  CHECK(gc.headers ==
        std::map<std::string, std::string>{{"X-Extra", "$literal"},
                                           {"X-Scope-OrgID", "tenant-1"}});
  CHECK(gc.tls_config.ca_file == dir.path() + "/tls/ca.pem");
  CHECK(gc.tls_config.cert_file == dir.path() + "/tls/client.crt");
  CHECK(gc.tls_config.key_file == dir.path() + "/tls/client.key");
  CHECK(gc.tls_config.server_name == "grafana.example");
  CHECK(gc.tls_config.insecure_skip_verify);
  CHECK(gc.remote_timeout == absl::Seconds(10));
  CHECK(gc.write_relabel_configs.size() == 2);
  CHECK(gc.forbidden_labels ==
        std::vector<std::string>{"project_id", "service_id"});
  CHECK(gc.queue_config.shards == 8);
  CHECK(gc.queue_config.max_samples_per_send == 500);
  CHECK(gc.queue_config.batch_send_deadline == absl::Seconds(2));
  CHECK(gc.queue_config.min_backoff == absl::Milliseconds(50));
  CHECK(gc.queue_config.max_backoff == absl::Seconds(10));
  CHECK_FALSE(gc.queue_config.retry_on_http_429);
  CHECK(gc.queue_config.max_memory_bytes == 64ull << 20);
  CHECK(gc.queue_config.shard_by == std::vector<std::string>{"instance"});
  REQUIRE(gc.storage.has_value());
  CHECK(gc.storage->path == dir.path() + "/queues/gc");
  CHECK(gc.storage->max_bytes == 2ull << 30);
  CHECK(gc.storage->on_full == OnFull::kDropOldest);
  CHECK(gc.on_full == OnFull::kDropOldest);
  CHECK(gc.storage->fsync == FsyncPolicy::kAlways);
  CHECK(gc.storage->fsync_interval == absl::Milliseconds(250));
  CHECK(gc.storage->segment_bytes == 16ull << 20);

  const Destination& vm = c.remote_write[1];
  CHECK(vm.name == "vm_2");
  CHECK(vm.bearer_token == "vm-token-value");  // whitespace trimmed
  CHECK(vm.bearer_token_file == dir.path() + "/secrets/vm-token");
  CHECK_FALSE(vm.basic_auth.has_value());
  CHECK_FALSE(vm.storage.has_value());
  CHECK(vm.on_full == OnFull::kReject);
  CHECK(c.remote_write[2].bearer_token == "inline-token");
}

TEST_CASE("defaults", "[loader]") {
  Loaded l = Load(kMinimalDestination);
  INFO(l.Dump());
  REQUIRE(l.ok());
  const Config& c = *l.config;
  ServerConfig s;
  CHECK(c.server.listen_address == "0.0.0.0:9201");
  CHECK(c.server.io_threads == 0);
  CHECK(c.server.max_request_bytes == s.max_request_bytes);
  CHECK(c.server.shutdown_timeout == absl::Seconds(30));
  CHECK_FALSE(c.server.tls.has_value());
  CHECK(c.server.clients.empty());
  CHECK(c.name_scheme == relabel::NameScheme::kUtf8);
  CHECK(c.relabel_configs.empty());
  const Destination& d = c.remote_write[0];
  CHECK(d.remote_timeout == absl::Seconds(30));
  CHECK(d.queue_config.shards == 4);
  CHECK(d.queue_config.max_samples_per_send == 2000);
  CHECK(d.queue_config.batch_send_deadline == absl::Seconds(5));
  CHECK(d.queue_config.min_backoff == absl::Milliseconds(30));
  CHECK(d.queue_config.max_backoff == absl::Seconds(5));
  CHECK(d.queue_config.retry_on_http_429);
  CHECK(d.queue_config.max_memory_bytes == 256ull << 20);
  CHECK(d.queue_config.shard_by ==
        std::vector<std::string>{"job", "instance", "__name__"});
  CHECK_FALSE(d.storage.has_value());
  CHECK(d.write_relabel_configs.empty());
  CHECK(d.forbidden_labels.empty());
  CHECK_FALSE(d.tls_config.insecure_skip_verify);
}

TEST_CASE("storage defaults; small queues get smaller segments", "[loader]") {
  Loaded l = Load(std::string(kMinimalDestination) +
                  "    storage: {path: /tmp/q, max_bytes: 10MiB}\n");
  INFO(l.Dump());
  REQUIRE(l.ok());
  const StorageConfig& st = *l.config->remote_write[0].storage;
  CHECK(st.path == "/tmp/q");
  CHECK(st.on_full == OnFull::kReject);
  CHECK(st.fsync == FsyncPolicy::kInterval);
  CHECK(st.fsync_interval == absl::Seconds(1));
  CHECK(st.segment_bytes == 10ull << 20);
  Loaded big =
      Load(std::string(kMinimalDestination) + "    storage: {path: /tmp/q}\n");
  REQUIRE(big.ok());
  CHECK(big.config->remote_write[0].storage->max_bytes == 1ull << 30);
  CHECK(big.config->remote_write[0].storage->segment_bytes == 64ull << 20);
}

TEST_CASE("YAML syntax errors name the line", "[loader][errors]") {
  Loaded l = Load("remote_write:\n  - name: [a\n    url: x\n");
  REQUIRE_FALSE(l.ok());
  REQUIRE(l.errors.size() == 1);
  CHECK(l.errors[0].line >= 2);
  CHECK(l.errors[0].message.find("YAML syntax error") == 0);
  CHECK(l.status.find("test.yaml:") == 0);
}

TEST_CASE("structural errors", "[loader][errors]") {
  SECTION("empty file") {
    Loaded l = Load("");
    CHECK(l.Has(1, "remote_write", "at least one destination"));
  }
  SECTION("top level is not a mapping") {
    Loaded l = Load("- a\n- b\n");
    CHECK(l.Has(1, "", "must be a mapping"));
  }
  SECTION("several documents") {
    Loaded l =
        Load(std::string(kMinimalDestination) + "---\n" + kMinimalDestination);
    CHECK(l.AnyContains("several YAML documents"));
  }
  SECTION("empty remote_write") {
    Loaded l = Load("remote_write: []\n");
    CHECK(l.Has(1, "remote_write", "at least one destination"));
  }
  SECTION("remote_write not a list") {
    Loaded l = Load("remote_write:\n  name: x\n");
    CHECK(l.Has(2, "remote_write", "expected a list"));
  }
  SECTION("null destination") {
    Loaded l = Load(std::string(kMinimalDestination) + "  -\n");
    INFO(l.Dump());
    CHECK(l.Has(4, "remote_write[1]", "must be a mapping"));
  }
  SECTION("a section of the wrong kind") {
    Loaded l = Load(std::string("server: 5\n") + kMinimalDestination);
    CHECK(l.Has(1, "server", "expected a mapping, got a scalar"));
  }
}

TEST_CASE("unknown keys, with suggestions and hints", "[loader][errors]") {
  Loaded l = Load(R"(servr:
  listen_address: x
remote_write:
  - name: vm
    url: http://vm/api/v1/write
    queue_config:
      shard: 2
      max_shards: 10
    send_exemplars: true
    sigv4: {}
    frobnicate: 1
)");
  INFO(l.Dump());
  REQUIRE_FALSE(l.ok());
  CHECK(l.Has(1, "", "unknown key \"servr\" (did you mean \"server\"?)"));
  CHECK(l.Has(7, "remote_write[0].queue_config",
              "unknown key \"shard\" (did you mean \"shards\"?)"));
  CHECK(l.Has(8, "remote_write[0].queue_config",
              "shard count is fixed: use shards"));
  CHECK(l.Has(9, "remote_write[0]", "exemplars are always forwarded"));
  CHECK(l.Has(10, "remote_write[0]", "SigV4 is not supported"));
  CHECK(
      l.Has(11, "remote_write[0]", "unknown key \"frobnicate\"; valid keys:"));
  CHECK(l.errors.size() == 6);
  // Errors are sorted by line and each carries its column.
  for (size_t i = 1; i < l.errors.size(); ++i) {
    CHECK(l.errors[i - 1].line <= l.errors[i].line);
  }
  CHECK(l.errors[1].column == 7);
}

TEST_CASE("duplicate keys are errors", "[loader][errors]") {
  Loaded l = Load(R"(remote_write:
  - name: vm
    url: http://vm/api/v1/write
    name: other
)");
  CHECK(l.Has(4, "remote_write[0].name", "duplicate key"));
}

TEST_CASE("YAML anchors and merge keys work", "[loader]") {
  Loaded l = Load(R"(queue: &q
remote_write:
  - name: a
    url: http://a/api/v1/write
    queue_config: &qc {shards: 2, max_samples_per_send: 100}
  - name: b
    url: http://b/api/v1/write
    queue_config:
      <<: *qc
      shards: 3
)");
  // `queue` is unknown: the anchor trick does not bypass strictness.
  CHECK(l.Has(1, "", "unknown key \"queue\""));
  Loaded m = Load(R"(remote_write:
  - name: a
    url: http://a/api/v1/write
    queue_config: &qc {shards: 2, max_samples_per_send: 100}
  - name: b
    url: http://b/api/v1/write
    queue_config:
      <<: *qc
      shards: 3
)");
  INFO(m.Dump());
  REQUIRE(m.ok());
  CHECK(m.config->remote_write[1].queue_config.shards == 3);
  CHECK(m.config->remote_write[1].queue_config.max_samples_per_send == 100);
}

TEST_CASE("destination name and url", "[loader][errors]") {
  Loaded l = Load(R"(remote_write:
  - url: http://vm/api/v1/write
  - name: ""
    url: http://vm/api/v1/write
  - name: has space
    url: http://vm/api/v1/write
  - name: dup
    url: http://vm/api/v1/write
  - name: dup
    url: http://vm/api/v1/write
  - name: nourl
  - name: ftp
    url: ftp://vm/x
  - name: nohost
    url: http:///api/v1/write
  - name: creds
    url: https://user:hunter2@vm/api/v1/write
  - name: badport
    url: http://vm:99999/api
  - name: ok6
    url: https://[2001:db8::1]:443/api/v1/write
)");
  INFO(l.Dump());
  CHECK(l.Has(2, "remote_write[0].name", "required"));
  CHECK(l.Has(3, "remote_write[1].name", "not a valid destination name"));
  CHECK(l.Has(5, "remote_write[2].name", "not a valid destination name"));
  CHECK(l.Has(9, "remote_write[4].name",
              "duplicate destination name \"dup\" (also remote_write[3])"));
  CHECK(l.Has(11, "remote_write[5].url", "required"));
  CHECK(l.Has(13, "remote_write[6].url", "http:// or https://"));
  CHECK(l.Has(15, "remote_write[7].url", "has no host"));
  CHECK(l.Has(17, "remote_write[8].url", "use basic_auth"));
  CHECK(l.Has(19, "remote_write[9].url", "port"));
  CHECK_FALSE(l.AnyContains("ok6"));
  CHECK_FALSE(l.AnyContains("remote_write[10]"));
  // The password in the url never shows.
  CHECK_FALSE(l.AnyContains("hunter2"));
  CHECK(l.errors.size() == 9);
}

TEST_CASE("auth: exclusivity, secret files, and secrets never shown",
          "[loader][errors]") {
  TempDir dir;
  dir.Write("pw", "topsecretvalue\n");
  dir.Write("empty", "\n");
  std::string yaml = R"(remote_write:
  - name: a
    url: http://a/x
    basic_auth: {username: u, password: topsecretvalue, password_file: pw}
  - name: b
    url: http://b/x
    bearer_token: topsecretvalue
    bearer_token_file: pw
  - name: c
    url: http://c/x
    basic_auth: {username: u, password: topsecretvalue}
    bearer_token: topsecretvalue
  - name: d
    url: http://d/x
    basic_auth: {password: topsecretvalue}
  - name: e
    url: http://e/x
    bearer_token_file: missing-file
  - name: f
    url: http://f/x
    basic_auth: {username: u, password_file: empty}
  - name: g
    url: http://g/x
    basic_auth: topsecretvalue
)";
  std::string path = dir.Write("c.yaml", yaml);
  std::vector<ConfigError> errors;
  auto r = LoadFromFile(path, &errors);
  REQUIRE_FALSE(r.ok());
  Loaded l;
  l.errors = errors;
  l.status = std::string(r.status().message());
  INFO(l.Dump());
  CHECK(l.Has(4, "remote_write[0].basic_auth.password_file",
              "password and password_file are mutually exclusive"));
  CHECK(l.Has(8, "remote_write[1].bearer_token_file",
              "bearer_token and bearer_token_file are mutually exclusive"));
  CHECK(l.Has(12, "remote_write[2].bearer_token",
              "basic_auth and bearer_token are mutually exclusive"));
  CHECK(l.Has(15, "remote_write[3].basic_auth.username", "required"));
  CHECK(l.Has(18, "remote_write[4].bearer_token_file", "cannot read"));
  CHECK(l.AnyContains(dir.path() + "/missing-file"));
  CHECK(l.Has(21, "remote_write[5].basic_auth.password_file", "is empty"));
  CHECK(l.Has(24, "remote_write[6].basic_auth", "expected a mapping"));
  CHECK_FALSE(l.AnyContains("topsecretvalue"));
  CHECK(l.errors.size() == 7);

  SECTION("read_files=false does not read secret files") {
    std::string ok = R"(remote_write:
  - name: e
    url: http://e/x
    bearer_token_file: /nonexistent/secret
    tls_config: {ca_file: /nonexistent/ca.pem}
)";
    LoadOptions opts;
    opts.read_files = false;
    Loaded syntax = Load(ok, "x.yaml", opts);
    INFO(syntax.Dump());
    REQUIRE(syntax.ok());
    CHECK(syntax.config->remote_write[0].bearer_token.empty());
    CHECK(syntax.config->remote_write[0].bearer_token_file ==
          "/nonexistent/secret");
    Loaded full = Load(ok, "x.yaml");
    CHECK(full.Has(4, "remote_write[0].bearer_token_file", "cannot read"));
    CHECK(full.Has(5, "remote_write[0].tls_config.ca_file", "cannot read"));
  }
}

TEST_CASE("secret file paths resolve against the config's directory",
          "[loader]") {
  TempDir dir;
  dir.Write("conf/secrets/token", "tok\n");
  std::string path = dir.Write("conf/promrelay.yaml", R"(remote_write:
  - name: a
    url: http://a/x
    bearer_token_file: secrets/token
)");
  auto r = LoadFromFile(path, nullptr);
  INFO(r.status());
  REQUIRE(r.ok());
  CHECK((*r)->remote_write[0].bearer_token == "tok");
  // The same text loaded as if it lived elsewhere does not find the file.
  Loaded elsewhere = Load(R"(remote_write:
  - name: a
    url: http://a/x
    bearer_token_file: secrets/token
)",
                          dir.path() + "/other/promrelay.yaml");
  CHECK(elsewhere.Has(4, "remote_write[0].bearer_token_file", "cannot read"));
}

TEST_CASE("environment variables", "[loader]") {
  ScopedEnv user("PROMRELAY_TEST_USER", "4242");
  ScopedEnv shards("PROMRELAY_TEST_SHARDS", "6");
  ScopedEnv secret("PROMRELAY_TEST_SECRET", "pa: ss # not a comment");
  ScopedEnv unset("PROMRELAY_TEST_UNSET", nullptr);
  Loaded l = Load(R"(remote_write:
  - name: a
    url: http://a/x
    basic_auth:
      username: ${PROMRELAY_TEST_USER}
      password: ${PROMRELAY_TEST_SECRET}
    queue_config: {shards: "${PROMRELAY_TEST_SHARDS}"}
    write_relabel_configs:
      - target_label: t
        replacement: ${1}-$$-${PROMRELAY_TEST_USER}
)");
  INFO(l.Dump());
  REQUIRE(l.ok());
  const Destination& d = l.config->remote_write[0];
  CHECK(d.basic_auth->username == "4242");
  // A value with YAML syntax in it stays one value.
  CHECK(d.basic_auth->password == "pa: ss # not a comment");
  CHECK(d.queue_config.shards == 6);

  // Relabel rules keep their `$` templates: no expansion, no error.
  relabel::LabelBuilder b;
  std::vector<relabel::Label> in = {{"__name__", "up"}};
  b.Reset(in);
  REQUIRE(d.write_relabel_configs.Apply(b));
  bool found = false;
  for (const relabel::Label& label : b.Result()) {
    if (label.name == "t") {
      found = true;
      // Go template: ${1} is "", $$ is "$", an unknown group is "".
      CHECK(label.value == "-$-");
    }
  }
  CHECK(found);

  Loaded missing = Load(R"(remote_write:
  - name: a
    url: http://a/x
    bearer_token: ${PROMRELAY_TEST_UNSET}
    headers: {X-A: "${PROMRELAY_TEST_UNSET}"}
)");
  CHECK(missing.Has(4, "remote_write[0].bearer_token",
                    "environment variable PROMRELAY_TEST_UNSET is not set"));
  CHECK(missing.Has(5, "remote_write[0].headers.X-A",
                    "environment variable PROMRELAY_TEST_UNSET is not set"));
  Loaded bad = Load(R"(remote_write:
  - name: a
    url: http://a/${oops
)");
  CHECK(bad.Has(3, "remote_write[0].url", "unterminated"));
}

TEST_CASE("durations and sizes in the config", "[loader][errors]") {
  Loaded l = Load(R"(server:
  shutdown_timeout: 5
  max_request_bytes: 1.5GiB
  max_decompressed_bytes: 0
remote_write:
  - name: a
    url: http://a/x
    remote_timeout: -1s
    queue_config:
      batch_send_deadline: 1.5s
      min_backoff: 10s
      max_backoff: 1s
      max_memory_bytes: lots
    storage:
      path: /tmp/q
      max_bytes: 1MiB
      segment_bytes: 2MiB
      fsync_interval: 0s
)");
  INFO(l.Dump());
  CHECK(l.Has(2, "server.shutdown_timeout",
              "not a valid duration string: \"5\" (add a unit"));
  CHECK(l.Has(3, "server.max_request_bytes", "invalid byte size \"1.5GiB\""));
  CHECK(l.Has(4, "server.max_decompressed_bytes", "greater than 0"));
  CHECK(l.Has(8, "remote_write[0].remote_timeout",
              "not a valid duration string: \"-1s\""));
  CHECK(l.Has(10, "remote_write[0].queue_config.batch_send_deadline",
              "not a valid duration"));
  CHECK(l.Has(12, "remote_write[0].queue_config.max_backoff",
              "min_backoff (10s) is greater than max_backoff (1s)"));
  CHECK(l.Has(13, "remote_write[0].queue_config.max_memory_bytes",
              "invalid byte size"));
  CHECK(l.Has(17, "remote_write[0].storage.segment_bytes",
              "larger than max_bytes"));
  CHECK(l.Has(18, "remote_write[0].storage.fsync_interval", "greater than 0"));
  CHECK(l.errors.size() == 9);
}

TEST_CASE("numbers, booleans and enums", "[loader][errors]") {
  Loaded l = Load(R"(server:
  io_threads: -1
  max_series_per_request: 0
  listen_address: nocolon
global:
  metric_name_validation_scheme: ascii
remote_write:
  - name: a
    url: http://a/x
    tls_config: {insecure_skip_verify: maybe}
    queue_config:
      shards: 0
      max_samples_per_send: 1e3
      retry_on_http_429:
    storage:
      on_full: block
      fsync: sometimes
)");
  INFO(l.Dump());
  CHECK(l.Has(2, "server.io_threads", "not a non-negative integer"));
  CHECK(l.Has(3, "server.max_series_per_request", "between 1 and"));
  CHECK(l.Has(4, "server.listen_address", "host:port"));
  CHECK(l.Has(6, "global.metric_name_validation_scheme",
              "want one of utf8, legacy; got \"ascii\""));
  CHECK(l.Has(10, "remote_write[0].tls_config.insecure_skip_verify",
              "want true or false"));
  CHECK(l.Has(12, "remote_write[0].queue_config.shards", "between 1 and"));
  CHECK(l.Has(13, "remote_write[0].queue_config.max_samples_per_send",
              "not a non-negative integer"));
  CHECK(l.Has(14, "remote_write[0].queue_config.retry_on_http_429",
              "has no value"));
  CHECK(l.Has(15, "remote_write[0].storage.path", "required"));
  CHECK(l.Has(16, "remote_write[0].storage.on_full",
              "want one of reject, drop_oldest"));
  CHECK(l.Has(17, "remote_write[0].storage.fsync",
              "want one of always, interval, never"));
  CHECK(l.errors.size() == 11);
}

TEST_CASE("listen_address forms", "[loader]") {
  for (const char* ok :
       {":9201", "0.0.0.0:9201", "[::]:9201", "localhost:0", "[::1]:65535"}) {
    Loaded l = Load(std::string("server: {listen_address: \"") + ok + "\"}\n" +
                    kMinimalDestination);
    INFO(ok << "\n" << l.Dump());
    CHECK(l.ok());
  }
  for (const char* bad :
       {"9201", ":", "::1:9201", "[::1:9201", "a:65536", "a:port"}) {
    Loaded l = Load(std::string("server: {listen_address: \"") + bad + "\"}\n" +
                    kMinimalDestination);
    INFO(bad);
    CHECK(l.Has(1, "server.listen_address", ""));
  }
}

TEST_CASE("TLS files", "[loader][errors]") {
  TempDir dir;
  dir.Write("c.pem", "x");
  std::string path = dir.Write("p.yaml", R"(server:
  tls: {cert_file: c.pem}
remote_write:
  - name: a
    url: https://a/x
    tls_config:
      cert_file: c.pem
  - name: b
    url: https://b/x
    tls_config:
      key_file: c.pem
)");
  std::vector<ConfigError> errors;
  REQUIRE_FALSE(LoadFromFile(path, &errors).ok());
  Loaded l;
  l.errors = errors;
  INFO(l.Dump());
  CHECK(l.Has(2, "server.tls.key_file", "required"));
  CHECK(l.Has(7, "remote_write[0].tls_config.cert_file", "needs key_file"));
  CHECK(l.Has(11, "remote_write[1].tls_config.key_file", "needs cert_file"));
  CHECK(errors.size() == 3);
}

TEST_CASE("headers", "[loader][errors]") {
  Loaded l = Load(R"(remote_write:
  - name: a
    url: http://a/x
    headers:
      Authorization: Bearer topsecretvalue
      "Bad Header": x
      Content-Type: text/plain
      X-Ok: fine
      X-List: [a]
)");
  INFO(l.Dump());
  CHECK(l.Has(5, "remote_write[0].headers.Authorization",
              "use basic_auth or bearer_token"));
  CHECK(l.Has(6, "remote_write[0].headers.Bad Header",
              "not a valid HTTP header name"));
  CHECK(l.Has(7, "remote_write[0].headers.Content-Type", "set by promrelay"));
  CHECK(l.Has(9, "remote_write[0].headers.X-List", "expected a string"));
  CHECK_FALSE(l.AnyContains("topsecretvalue"));
  CHECK(l.errors.size() == 4);
}

TEST_CASE("forbidden_labels and inject_labels are label names",
          "[loader][errors]") {
  Loaded l = Load(R"(server:
  clients:
    - name: a
      bearer_token: t1
      inject_labels: {"": x, ok: y}
    - name: a
      bearer_token: t2
    - name: c
      bearer_token: t1
    - name: d
remote_write:
  - name: a
    url: http://a/x
    forbidden_labels: [project_id, "", project_id]
    queue_config: {shard_by: [job, job, ""]}
  - name: b
    url: http://b/x
    queue_config: {shard_by: []}
)");
  INFO(l.Dump());
  CHECK(l.Has(5, "server.clients[0].inject_labels.", "not a valid label name"));
  CHECK(l.Has(6, "server.clients[1].name", "duplicate client name"));
  CHECK(l.Has(8, "server.clients[2]",
              "uses the same credentials as server.clients[0]"));
  CHECK(l.Has(10, "server.clients[3]", "needs bearer_token"));
  CHECK(l.Has(14, "remote_write[0].forbidden_labels[1]",
              "not a valid label name"));
  CHECK(l.Has(14, "remote_write[0].forbidden_labels[2]", "duplicate label"));
  CHECK(l.Has(15, "remote_write[0].queue_config.shard_by[1]",
              "duplicate label \"job\""));
  CHECK(l.Has(15, "remote_write[0].queue_config.shard_by[2]",
              "not a valid label name"));
  CHECK_FALSE(l.AnyContains("t1"));
  CHECK(l.errors.size() == 8);

  Loaded legacy = Load(R"(global: {metric_name_validation_scheme: legacy}
remote_write:
  - name: a
    url: http://a/x
    forbidden_labels: [ok_name, "dotted.name"]
)");
  CHECK(legacy.Has(5, "remote_write[0].forbidden_labels[1]", "legacy"));
  Loaded utf8 = Load(R"(remote_write:
  - name: a
    url: http://a/x
    forbidden_labels: [ok_name, "dotted.name"]
)");
  CHECK(utf8.ok());
}

TEST_CASE("shard_by: [] means every label", "[loader]") {
  Loaded l = Load(R"(remote_write:
  - name: a
    url: http://a/x
    queue_config: {shard_by: []}
  - name: b
    url: http://b/x
    queue_config: {shard_by: [pod]}
)");
  INFO(l.Dump());
  REQUIRE(l.ok());
  CHECK(l.config->remote_write[0].queue_config.shard_by.empty());
  CHECK(l.config->remote_write[1].queue_config.shard_by ==
        std::vector<std::string>{"pod"});
}

TEST_CASE("storage paths must differ between destinations", "[loader]") {
  Loaded l = Load(R"(remote_write:
  - name: a
    url: http://a/x
    storage: {path: /tmp/q}
  - name: b
    url: http://b/x
    storage: {path: /tmp/q/../q}
)");
  CHECK(l.Has(7, "remote_write[1].storage.path", "cannot share"));
}

TEST_CASE("every error is collected, status repeats them", "[loader]") {
  auto r = LoadFromString(R"(remote_write:
  - name: a
    url: ftp://a
    queue_config: {shards: 0}
)",
                          "my.yaml", nullptr);
  REQUIRE_FALSE(r.ok());
  std::string msg(r.status().message());
  CHECK(msg.find("my.yaml:3:10: remote_write[0].url:") != std::string::npos);
  CHECK(msg.find("my.yaml:4:28: remote_write[0].queue_config.shards:") !=
        std::string::npos);
  std::vector<ConfigError> errors;
  auto r2 = LoadFromString("remote_write: 5\nx: 1\n", "my.yaml", &errors);
  REQUIRE(errors.size() == 2);
  std::string first(r2.status().message());
  CHECK(first.find("(and 1 more errors)") != std::string::npos);
  CHECK(errors[0].ToString() ==
        "1:15: remote_write: expected a list of destinations, got a scalar");
}

TEST_CASE("LoadFromFile reports an unreadable file", "[loader]") {
  std::vector<ConfigError> errors;
  auto r = LoadFromFile("/nonexistent/promrelay.yaml", &errors);
  REQUIRE_FALSE(r.ok());
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("cannot read config file") == 0);
}

}  // namespace
}  // namespace promrelay::config
