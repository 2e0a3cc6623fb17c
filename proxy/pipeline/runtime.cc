#include "proxy/pipeline/runtime.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "proxy/metrics/log.h"

namespace promrelay::pipeline {
namespace {

const config::Destination* FindDest(const config::Config* cfg,
                                    const std::string& name) {
  if (cfg == nullptr) return nullptr;
  for (const config::Destination& d : cfg->remote_write) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

void CloseAll(const DestinationQueues& q) {
  for (const auto& shard : q.AllShards()) {
    if (shard) shard->Close();
  }
}

bool SameStorage(const config::Destination& a, const config::Destination& b) {
  if (a.storage.has_value() != b.storage.has_value()) return false;
  if (a.on_full != b.on_full) return false;
  if (!a.storage) {
    return a.queue_config.max_memory_bytes == b.queue_config.max_memory_bytes;
  }
  return a.storage->path == b.storage->path &&
         a.storage->max_bytes == b.storage->max_bytes &&
         a.storage->fsync == b.storage->fsync &&
         a.storage->fsync_interval == b.storage->fsync_interval &&
         a.storage->segment_bytes == b.storage->segment_bytes;
}

}  // namespace

Runtime::Runtime(QueueFactory queue_factory, DestinationObserver* observer,
                 metrics::Registry* registry)
    : queue_factory_(std::move(queue_factory)),
      observer_(observer),
      registry_(registry != nullptr ? registry : &metrics::Default()),
      pipeline_(registry_) {
  reload_ok_ = &registry_
                    ->AddGauge("promrelay_config_last_reload_successful",
                               "1 when the last configuration load "
                               "succeeded, 0 when it failed (the previous "
                               "configuration stays in use).")
                    .With({});
  reload_ts_ = &registry_
                    ->AddGauge(
                        "promrelay_config_last_reload_success_"
                        "timestamp_seconds",
                        "Unix time of the last successful "
                        "configuration load.")
                    .With({});
  auto& reloads = registry_->AddCounter(
      "promrelay_config_reloads_total",
      "Configuration reloads (SIGHUP, POST /-/reload) by result.", {"result"});
  reloads_ok_ = &reloads.With({"success"});
  reloads_failed_ = &reloads.With({"failure"});
}

Runtime::~Runtime() { CloseQueues(); }

absl::Status Runtime::Apply(std::shared_ptr<const config::Config> config) {
  if (config == nullptr) return absl::InvalidArgumentError("no config");
  std::lock_guard<std::mutex> lock(mu_);
  const config::Config* old = config_.get();

  // New destinations: queues first, then their observers. Everything here is
  // undone if a later step fails.
  std::vector<std::string> added;
  std::map<std::string, DestinationQueues> created;
  std::vector<const config::Destination*> updated;  // new settings applied
  auto rollback = [&] {
    for (const config::Destination* d : updated) {
      const config::Destination* before = FindDest(old, d->name);
      if (before != nullptr && observer_ != nullptr) {
        absl::Status st = observer_->Updated(*before);
        if (!st.ok()) {
          logging::Error("could not restore a destination's settings",
                         {{"destination", d->name}, {"err", st}});
        }
      }
    }
    for (const std::string& name : added) {
      if (observer_ != nullptr) observer_->Removed(name);
    }
    for (auto& [name, q] : created) CloseAll(q);
  };

  std::set<std::string> names;
  for (const config::Destination& d : config->remote_write) {
    if (!names.insert(d.name).second) {
      rollback();
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate destination name \"", d.name, "\""));
    }
    if (queues_.count(d.name) > 0) continue;
    absl::StatusOr<DestinationQueues> q = queue_factory_(d);
    if (!q.ok()) {
      rollback();
      return absl::Status(q.status().code(),
                          absl::StrCat("remote_write \"", d.name,
                                       "\": ", q.status().message()));
    }
    q->name = d.name;
    if (q->shards.empty()) {
      rollback();
      return absl::InternalError(
          absl::StrCat("remote_write \"", d.name, "\": no queues created"));
    }
    created.emplace(d.name, *std::move(q));
  }
  for (const config::Destination& d : config->remote_write) {
    auto it = created.find(d.name);
    if (it == created.end()) continue;
    if (observer_ != nullptr) {
      absl::Status st = observer_->Added(d, it->second);
      if (!st.ok()) {
        rollback();
        return absl::Status(st.code(), absl::StrCat("remote_write \"", d.name,
                                                    "\": ", st.message()));
      }
    }
    added.push_back(d.name);
  }
  for (const config::Destination& d : config->remote_write) {
    if (created.count(d.name) > 0) continue;
    const config::Destination* before = FindDest(old, d.name);
    const DestinationQueues& q = queues_.at(d.name);
    if (static_cast<size_t>(d.queue_config.shards) != q.shards.size()) {
      logging::Warn(
          "queue_config.shards changed; the new shard count applies after a "
          "restart",
          {{"destination", d.name},
           {"shards", q.shards.size()},
           {"configured", d.queue_config.shards}});
    }
    if (before != nullptr &&
        before->queue_config.shard_by != d.queue_config.shard_by) {
      logging::Warn(
          "queue_config.shard_by changed; series move to other shards, so "
          "while samples queued before the reload drain, a series' samples "
          "may arrive out of order",
          {{"destination", d.name}});
    }
    if (before != nullptr && !SameStorage(*before, d)) {
      logging::Warn(
          "storage or queue bounds changed; they apply after a restart",
          {{"destination", d.name}});
    }
    if (observer_ != nullptr) {
      absl::Status st = observer_->Updated(d);
      if (!st.ok()) {
        rollback();
        return absl::Status(st.code(), absl::StrCat("remote_write \"", d.name,
                                                    "\": ", st.message()));
      }
    }
    updated.push_back(&d);
  }

  std::map<std::string, DestinationQueues> next;
  std::vector<DestinationQueues> list;
  for (const config::Destination& d : config->remote_write) {
    auto it = created.find(d.name);
    DestinationQueues q = it != created.end() ? it->second : queues_.at(d.name);
    list.push_back(q);
    next.emplace(d.name, std::move(q));
  }
  absl::Status st = pipeline_.Update(config, std::move(list));
  if (!st.ok()) {
    rollback();
    return st;
  }

  // Gone destinations: their senders stop, their queues close. What was
  // still queued in memory for them is lost (logged by the sender).
  for (auto& [name, q] : queues_) {
    if (next.count(name) > 0) continue;
    logging::Info("destination removed by reload", {{"destination", name}});
    if (observer_ != nullptr) observer_->Removed(name);
    CloseAll(q);
  }
  for (const std::string& name : added) {
    if (old != nullptr) {
      logging::Info("destination added by reload", {{"destination", name}});
    }
  }
  queues_ = std::move(next);
  config_ = std::move(config);
  return absl::OkStatus();
}

absl::Status Runtime::Reload(
    const std::string& path,
    const std::function<absl::Status(const config::Config&)>& before_apply) {
  std::vector<config::ConfigError> errors;
  absl::StatusOr<std::shared_ptr<const config::Config>> cfg =
      config::LoadFromFile(path, &errors);
  absl::Status st;
  if (!cfg.ok()) {
    if (errors.empty()) {
      st = cfg.status();
    } else {
      std::vector<std::string> lines;
      for (const config::ConfigError& e : errors) lines.push_back(e.ToString());
      st = absl::InvalidArgumentError(absl::StrJoin(lines, "; "));
    }
  } else {
    if (before_apply) st = before_apply(**cfg);
    if (st.ok()) st = Apply(*std::move(cfg));
  }
  if (st.ok()) {
    reload_ok_->Set(1);
    reload_ts_->Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
    reloads_ok_->Inc();
    logging::Info("configuration loaded", {{"file", path}});
  } else {
    reload_ok_->Set(0);
    reloads_failed_->Inc();
    logging::Error("configuration not loaded; the previous one stays in use",
                   {{"file", path}, {"err", st}});
  }
  return st;
}

std::vector<DestinationQueues> Runtime::queues() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DestinationQueues> out;
  for (const auto& [name, q] : queues_) out.push_back(q);
  return out;
}

void Runtime::CloseQueues() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, q] : queues_) CloseAll(q);
}

}  // namespace promrelay::pipeline
