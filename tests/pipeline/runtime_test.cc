#include "proxy/pipeline/runtime.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "proxy/metrics/log.h"
#include "tests/pipeline/test_util.h"

namespace promrelay::pipeline {
namespace {

using testing::FakeQueue;

struct Observer : DestinationObserver {
  absl::Status Added(const config::Destination& dest,
                     const DestinationQueues& queues) override {
    events.push_back("add " + dest.name + " " +
                     std::to_string(queues.shards.size()));
    if (dest.name == fail_add) return absl::InvalidArgumentError("bad url");
    return absl::OkStatus();
  }
  absl::Status Updated(const config::Destination& dest) override {
    events.push_back("update " + dest.name + " " + dest.url);
    if (dest.url == fail_url) return absl::InvalidArgumentError("bad url");
    return absl::OkStatus();
  }
  void Removed(const std::string& name) override {
    events.push_back("remove " + name);
  }
  std::vector<std::string> events;
  std::string fail_add;
  std::string fail_url = "never";
};

struct Env {
  Env()
      : runtime(
            [this](const config::Destination& d)
                -> absl::StatusOr<DestinationQueues> {
              if (d.name == fail_queue) return absl::InternalError("disk full");
              DestinationQueues q;
              for (int i = 0; i < d.queue_config.shards; ++i) {
                auto f = std::make_shared<FakeQueue>();
                created.push_back(f);
                q.shards.push_back(f);
              }
              return q;
            },
            &observer, &registry) {}

  metrics::Registry registry;
  Observer observer;
  std::string fail_queue;
  std::vector<std::shared_ptr<FakeQueue>> created;
  Runtime runtime;
};

std::shared_ptr<config::Config> Dests(
    std::vector<std::pair<std::string, std::string>> name_url, int shards = 2) {
  auto cfg = std::make_shared<config::Config>();
  for (const auto& [name, url] : name_url) {
    config::Destination d;
    d.name = name;
    d.url = url;
    d.queue_config.shards = shards;
    cfg->remote_write.push_back(std::move(d));
  }
  return cfg;
}

TEST_CASE("apply and reload with kept and added and removed destinations") {
  Env env;
  REQUIRE(env.runtime.Apply(Dests({{"a", "u1"}, {"b", "u1"}})).ok());
  CHECK(env.observer.events == std::vector<std::string>{"add a 2", "add b 2"});
  REQUIRE(env.created.size() == 4);
  auto a_queues = env.runtime.queues()[0].shards;

  env.observer.events.clear();
  auto next = Dests({{"a", "u2"}, {"c", "u1"}});
  REQUIRE(env.runtime.Apply(next).ok());
  CHECK(env.observer.events ==
        std::vector<std::string>{"add c 2", "update a u2", "remove b"});
  CHECK(env.runtime.config() == next);
  auto qs = env.runtime.queues();
  REQUIRE(qs.size() == 2);
  CHECK(qs[0].name == "a");
  CHECK(qs[0].shards == a_queues);  // kept across the reload
  // b's queues were closed, a's were not.
  CHECK(env.created[2]->closed);
  CHECK(env.created[3]->closed);
  CHECK_FALSE(env.created[0]->closed);

  // The pipeline writes to the surviving and the new destinations.
  prometheus::WriteRequest req;
  testing::AddSeries(&req, {{"__name__", "up"}});
  REQUIRE(env.runtime.pipeline().Ingest(testing::Body(req)).ok());
  size_t appended = 0;
  for (const auto& q : env.created) appended += q->records.size();
  CHECK(appended == 2);
}

TEST_CASE("a reload that changes shard_by warns and applies at once") {
  std::mutex mu;
  std::string logs;
  logging::SetSinkForTesting([&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    logs.append(line);
  });
  Env env;
  auto by_job = Dests({{"a", "u1"}}, 4);
  by_job->remote_write[0].queue_config.shard_by = {"job"};
  REQUIRE(env.runtime.Apply(by_job).ok());
  prometheus::WriteRequest req;
  for (int i = 0; i < 40; ++i) {
    testing::AddSeries(
        &req, {{"__name__", "m"}, {"i", std::to_string(i)}, {"job", "one"}});
  }
  // Every series has the same job: one shard gets them all.
  const auto shards_used = [&] {
    for (const auto& q : env.created) q->records.clear();
    REQUIRE(env.runtime.pipeline().Ingest(testing::Body(req)).ok());
    int used = 0;
    for (const auto& q : env.created) used += q->records.empty() ? 0 : 1;
    return used;
  };
  CHECK(shards_used() == 1);
  CHECK(logs.find("shard_by changed") == std::string::npos);

  auto by_all = Dests({{"a", "u1"}}, 4);
  by_all->remote_write[0].queue_config.shard_by.clear();
  REQUIRE(env.runtime.Apply(by_all).ok());
  logging::SetSinkForTesting(nullptr);
  CHECK(shards_used() == 4);  // by every label: spread at once
  std::lock_guard<std::mutex> lock(mu);
  CHECK_THAT(logs, Catch::Contains("queue_config.shard_by changed"));
  CHECK_THAT(logs, Catch::Contains("destination=a"));
}

TEST_CASE("a failing reload changes nothing") {
  Env env;
  auto first = Dests({{"a", "u1"}});
  REQUIRE(env.runtime.Apply(first).ok());
  env.observer.events.clear();

  SECTION("sender for a new destination fails") {
    env.observer.fail_add = "b";
    CHECK_FALSE(env.runtime.Apply(Dests({{"a", "u2"}, {"b", "u1"}})).ok());
    // b's queues were closed; a never saw the new url.
    CHECK(env.observer.events == std::vector<std::string>{"add b 2"});
    CHECK(env.created.back()->closed);
  }
  SECTION("update of a kept destination fails") {
    env.observer.fail_url = "bad";
    CHECK_FALSE(env.runtime.Apply(Dests({{"z", "u"}, {"a", "bad"}})).ok());
    CHECK(env.observer.events ==
          std::vector<std::string>{"add z 2", "update a bad", "remove z"});
  }
  SECTION("queue creation fails") {
    env.fail_queue = "b";
    absl::Status st = env.runtime.Apply(Dests({{"a", "u1"}, {"b", "u1"}}));
    CHECK(st.message().find("disk full") != absl::string_view::npos);
    CHECK(env.observer.events.empty());
  }
  SECTION("duplicate names") {
    CHECK_FALSE(env.runtime.Apply(Dests({{"a", "u1"}, {"a", "u2"}})).ok());
  }
  CHECK(env.runtime.config() == first);
  CHECK(env.runtime.queues().size() == 1);
  CHECK_FALSE(env.created[0]->closed);
}

TEST_CASE("CloseQueues closes every queue") {
  Env env;
  REQUIRE(env.runtime.Apply(Dests({{"a", "u"}, {"b", "u"}}, 1)).ok());
  env.runtime.CloseQueues();
  for (const auto& q : env.created) CHECK(q->closed);
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() /
             ("promrelay-runtime-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

TEST_CASE("Reload from a file sets the reload metrics") {
  Env env;
  const std::string good = WriteTemp("good.yaml", R"(
remote_write:
  - name: vm
    url: http://127.0.0.1:8428/api/v1/write
    queue_config: {shards: 3}
)");
  const std::string bad = WriteTemp("bad.yaml", R"(
remote_write:
  - name: vm
    url: http://127.0.0.1:8428/api/v1/write
    write_relabel_configs:
      - {regex: "(", action: drop}
)");
  auto gauge = [&](const std::string& name) {
    return env.registry.AddGauge(name, "").With({}).Value();
  };
  REQUIRE(env.runtime.Reload(good).ok());
  CHECK(gauge("promrelay_config_last_reload_successful") == 1);
  const double ts =
      gauge("promrelay_config_last_reload_success_timestamp_seconds");
  CHECK(ts > 1.6e9);
  CHECK(env.runtime.queues().at(0).shards.size() == 3);

  absl::Status st = env.runtime.Reload(bad);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("regex") != absl::string_view::npos);
  CHECK(gauge("promrelay_config_last_reload_successful") == 0);
  CHECK(gauge("promrelay_config_last_reload_success_timestamp_seconds") == ts);
  CHECK(env.runtime.config()->remote_write.at(0).write_relabel_configs.empty());

  CHECK_FALSE(env.runtime.Reload(good + ".missing").ok());
  REQUIRE(env.runtime.Reload(good).ok());
  CHECK(gauge("promrelay_config_last_reload_successful") == 1);

  // A check outside the file (the server certificate) fails the reload as
  // a whole: the hook sees the new config, nothing is applied.
  const auto running = env.runtime.config();
  int hook_calls = 0;
  st = env.runtime.Reload(good, [&](const config::Config& next) {
    ++hook_calls;
    CHECK(next.remote_write.size() == running->remote_write.size());
    return absl::InvalidArgumentError("server.tls.cert_file: cannot load");
  });
  CHECK(hook_calls == 1);
  CHECK(st.message().find("server.tls.cert_file") != absl::string_view::npos);
  CHECK(env.runtime.config() == running);
  CHECK(gauge("promrelay_config_last_reload_successful") == 0);
  REQUIRE(
      env.runtime
          .Reload(good, [](const config::Config&) { return absl::OkStatus(); })
          .ok());
  CHECK(env.runtime.config() != running);
  CHECK(gauge("promrelay_config_last_reload_successful") == 1);
  std::filesystem::remove_all(std::filesystem::path(good).parent_path());
}

}  // namespace
}  // namespace promrelay::pipeline
