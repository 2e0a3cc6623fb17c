#include "proxy/cli/run.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proxy/config/config.h"
#include "proxy/forward/forward.h"
#include "proxy/metrics/log.h"
#include "proxy/metrics/metrics.h"
#include "proxy/pipeline/runtime.h"
#include "proxy/queue/disk_queue.h"
#include "proxy/queue/queue.h"
#include "proxy/server/server.h"

#ifndef PROMRELAY_VERSION
#define PROMRELAY_VERSION "unknown"
#endif

namespace promrelay::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// How long a destination removed by a reload may keep sending what it has
// queued before its sender stops.
constexpr absl::Duration kRemovedDrainTime = absl::Seconds(5);

struct Flags {
  std::string config;
  std::string log_level;
};

// The CLI dispatcher already rejected unknown flags; this only picks out
// the values.
bool ParseRunFlags(const std::vector<std::string>& args, Flags* flags,
                   std::string* error) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (absl::StartsWith(a, "--")) a = a.substr(1);  // -config == --config
    auto value = [&](const std::string& name, std::string* out) {
      if (a == "-" + name) {
        if (i + 1 >= args.size()) {
          *error = "--" + name + " needs a value";
          return true;
        }
        *out = args[++i];
        return true;
      }
      if (absl::StartsWith(a, "-" + name + "=")) {
        *out = a.substr(name.size() + 2);
        return true;
      }
      return false;
    };
    if (value("config", &flags->config)) continue;
    if (value("log-level", &flags->log_level)) continue;
    if (value("log.level", &flags->log_level)) continue;
    *error = "unknown flag \"" + args[i] + "\"";
    return false;
  }
  if (!error->empty()) return false;
  if (flags->config.empty()) {
    *error = "--config FILE is required";
    return false;
  }
  return true;
}

queue::OnFull QueueOnFull(config::OnFull f) {
  return f == config::OnFull::kReject ? queue::OnFull::kReject
                                      : queue::OnFull::kDropOldest;
}

queue::FsyncPolicy QueueFsync(config::FsyncPolicy f) {
  switch (f) {
    case config::FsyncPolicy::kAlways:
      return queue::FsyncPolicy::kAlways;
    case config::FsyncPolicy::kInterval:
      return queue::FsyncPolicy::kInterval;
    case config::FsyncPolicy::kNever:
      return queue::FsyncPolicy::kNever;
  }
  return queue::FsyncPolicy::kInterval;
}

std::string ShardDir(const std::string& path, int shard) {
  return (std::filesystem::path(path) / absl::StrCat("shard-", shard)).string();
}

// Creates each destination's shard queues: in memory, or on disk under
// storage.path/shard-<i> (recovering what a previous run left).
class QueueMaker {
 public:
  explicit QueueMaker(metrics::Registry* registry) : registry_(registry) {
    fsync_hist_ = &registry_->AddHistogram(
        "promrelay_queue_fsync_duration_seconds",
        "Duration of each fdatasync of a disk queue segment file.",
        {"destination"},
        {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
         0.25, 0.5, 1, 2.5, 5});
  }

  absl::StatusOr<pipeline::DestinationQueues> Make(
      const config::Destination& d) {
    const int shards = std::max(1, d.queue_config.shards);
    pipeline::DestinationQueues q;
    q.name = d.name;
    if (!d.storage) {
      const uint64_t per =
          std::max<uint64_t>(1, d.queue_config.max_memory_bytes / shards);
      for (int i = 0; i < shards; ++i) {
        q.shards.push_back(queue::NewMemoryQueue(per, QueueOnFull(d.on_full)));
      }
      q.shard_capacity_bytes = per;
      return q;
    }
    const config::StorageConfig& st = *d.storage;
    const uint64_t per = std::max<uint64_t>(1, st.max_bytes / shards);
    metrics::Histogram* hist = &fsync_hist_->With({d.name});
    for (int i = 0; i < shards; ++i) {
      queue::DiskQueueOptions o;
      o.directory = ShardDir(st.path, i);
      o.max_bytes = per;
      o.on_full = QueueOnFull(st.on_full);
      o.fsync = QueueFsync(st.fsync);
      o.fsync_interval = st.fsync_interval;
      o.segment_bytes = st.segment_bytes;
      o.fsync_observer = [hist](absl::Duration dur) {
        hist->Observe(absl::ToDoubleSeconds(dur));
      };
      absl::StatusOr<std::unique_ptr<queue::DiskQueue>> dq =
          queue::OpenDiskQueue(o);
      if (!dq.ok()) {
        return absl::Status(dq.status().code(),
                            absl::StrCat("storage.path: shard ", i, ": ",
                                         dq.status().message()));
      }
      const queue::RecoveryReport& r = (*dq)->recovery();
      if (r.damaged()) {
        logging::Warn("disk queue was damaged; skipped the corrupt records",
                      {{"destination", d.name},
                       {"dir", o.directory},
                       {"summary", r.Summary()}});
        for (const std::string& m : r.messages) {
          logging::Warn(
              "disk queue damage",
              {{"destination", d.name}, {"dir", o.directory}, {"detail", m}});
        }
      } else if (r.records_recovered > 0) {
        logging::Info("disk queue recovered",
                      {{"destination", d.name},
                       {"dir", o.directory},
                       {"records", r.records_recovered},
                       {"samples", r.samples_recovered}});
      }
      std::shared_ptr<queue::DiskQueue> shared = std::move(*dq);
      {
        std::lock_guard<std::mutex> lock(mu_);
        disk_queues_.push_back(shared);
      }
      q.shards.push_back(std::move(shared));
    }
    q.shard_capacity_bytes = per;
    return q;
  }

  // Makes everything appended durable (fsync + read position), for a clean
  // shutdown.
  void FlushDisk() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& weak : disk_queues_) {
      if (auto q = weak.lock()) {
        absl::Status st = q->Flush();
        if (!st.ok()) logging::Error("disk queue flush failed", {{"err", st}});
      }
    }
  }

 private:
  metrics::Registry* registry_;
  metrics::Family<metrics::Histogram>* fsync_hist_;
  std::mutex mu_;
  std::vector<std::weak_ptr<queue::DiskQueue>> disk_queues_;
};

// Starts, reconfigures and stops one forward::DestinationSender per
// destination, as the runtime reports them.
class Senders : public pipeline::DestinationObserver {
 public:
  explicit Senders(metrics::Registry* registry) : registry_(registry) {}

  absl::Status Added(const config::Destination& dest,
                     const pipeline::DestinationQueues& queues) override {
    auto sender =
        forward::DestinationSender::Create(dest, queues.shards, registry_);
    if (!sender.ok()) return sender.status();
    (*sender)->Start();
    std::lock_guard<std::mutex> lock(mu_);
    senders_[dest.name] = std::move(*sender);
    return absl::OkStatus();
  }

  absl::Status Updated(const config::Destination& dest) override {
    forward::DestinationSender* s = Find(dest.name);
    if (s == nullptr) return absl::InternalError("no sender");
    return s->UpdateConfig(dest);
  }

  void Removed(const std::string& name) override {
    std::unique_ptr<forward::DestinationSender> s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = senders_.find(name);
      if (it == senders_.end()) return;
      s = std::move(it->second);
      senders_.erase(it);
    }
    const uint64_t left = s->Stop(absl::Now() + kRemovedDrainTime);
    if (left > 0) {
      logging::Warn("removed destination stopped with samples still queued",
                    {{"destination", name}, {"samples", left}});
    }
  }

  // Drains every destination in parallel until `deadline`.
  void StopAll(absl::Time deadline) {
    std::map<std::string, std::unique_ptr<forward::DestinationSender>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(senders_);
    }
    std::vector<std::thread> threads;
    std::mutex log_mu;
    for (auto& [name, sender] : all) {
      threads.emplace_back([&, name = name, s = sender.get()] {
        const uint64_t left = s->Stop(deadline);
        if (left > 0) {
          logging::Warn("stopped with samples still queued",
                        {{"destination", name}, {"samples", left}});
        }
      });
    }
    for (auto& t : threads) t.join();
  }

 private:
  forward::DestinationSender* Find(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = senders_.find(name);
    return it == senders_.end() ? nullptr : it->second.get();
  }

  metrics::Registry* registry_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<forward::DestinationSender>> senders_;
};

// Disk queue counters (cumulative per queue since it was opened) as
// per-destination metrics, refreshed before each /metrics exposition.
class DiskQueueMetrics {
 public:
  DiskQueueMetrics(metrics::Registry* registry, pipeline::Runtime* runtime)
      : runtime_(runtime) {
    auto counter = [&](const char* name, const char* help) {
      return &registry->AddCounter(name, help, {"destination"});
    };
    segments_ = &registry->AddGauge("promrelay_queue_segments",
                                    "Disk queue segment files, all shards.",
                                    {"destination"});
    disk_bytes_ = &registry->AddGauge(
        "promrelay_queue_disk_bytes",
        "Size of the disk queue's segment files, all shards.", {"destination"});
    counters_ = {
        {counter("promrelay_queue_fsyncs_total",
                 "fdatasync calls on disk queue segment files."),
         [](const queue::Stats& s) { return double(s.fsyncs); }},
        {counter("promrelay_queue_corrupt_records_total",
                 "Damaged disk queue regions skipped (at recovery or while "
                 "reading); each costs only its own records."),
         [](const queue::Stats& s) { return double(s.corrupt_records); }},
        {counter("promrelay_queue_corrupt_bytes_total",
                 "Bytes in skipped damaged disk queue regions."),
         [](const queue::Stats& s) { return double(s.corrupt_bytes); }},
        {counter("promrelay_queue_corrupt_samples_total",
                 "Samples lost in damaged disk queue records, where known."),
         [](const queue::Stats& s) { return double(s.corrupt_samples); }},
        {counter("promrelay_queue_truncated_bytes_total",
                 "Torn tail bytes cut off a disk queue segment at startup."),
         [](const queue::Stats& s) { return double(s.truncated_bytes); }},
    };
    id_ = registry->AddRefresher([this] { Refresh(); });
    registry_ = registry;
  }
  ~DiskQueueMetrics() { registry_->RemoveRefresher(id_); }

 private:
  using Getter = double (*)(const queue::Stats&);
  struct Entry {
    metrics::Family<metrics::Counter>* family;
    Getter get;
  };

  void Refresh() {
    for (const pipeline::DestinationQueues& q : runtime_->queues()) {
      std::vector<queue::Stats> stats;
      for (const auto& shard : q.shards) stats.push_back(shard->GetStats());
      const auto* cfg = FindDest(q.name);
      if (cfg == nullptr || !cfg->storage) continue;
      double segs = 0, bytes = 0;
      for (const auto& s : stats) {
        segs += s.segments;
        bytes += s.disk_bytes;
      }
      segments_->With({q.name}).Set(segs);
      disk_bytes_->With({q.name}).Set(bytes);
      for (size_t c = 0; c < counters_.size(); ++c) {
        double now = 0;
        for (const auto& s : stats) now += counters_[c].get(s);
        double& last = last_[{q.name, c}];
        // The queues of a destination live as long as the process (reloads
        // keep them), so their counters only grow.
        if (now > last) counters_[c].family->With({q.name}).Inc(now - last);
        last = now;
      }
    }
  }

  const config::Destination* FindDest(const std::string& name) {
    cfg_ = runtime_->config();
    if (!cfg_) return nullptr;
    for (const auto& d : cfg_->remote_write) {
      if (d.name == name) return &d;
    }
    return nullptr;
  }

  pipeline::Runtime* runtime_;
  metrics::Registry* registry_;
  uint64_t id_ = 0;
  std::shared_ptr<const config::Config> cfg_;
  metrics::Family<metrics::Gauge>* segments_;
  metrics::Family<metrics::Gauge>* disk_bytes_;
  std::vector<Entry> counters_;
  std::map<std::pair<std::string, size_t>, double> last_;
};

// Queue directories left by destinations no longer configured: reported,
// never deleted (they may hold data an operator wants to recover).
void ReportOrphanQueues(const config::Config& cfg, metrics::Gauge* gauge) {
  std::map<std::string, std::vector<std::string>> by_root;
  for (const auto& d : cfg.remote_write) {
    if (!d.storage) continue;
    std::filesystem::path p(d.storage->path);
    by_root[p.parent_path().string()].push_back(p.filename().string());
  }
  double orphans = 0;
  for (const auto& [root, names] : by_root) {
    auto found = queue::FindOrphanQueueDirs(root, names);
    if (!found.ok()) continue;
    for (const std::string& dir : *found) {
      ++orphans;
      logging::Warn(
          "queue directory of a destination that is not configured; its "
          "data is not sent (delete it, or add the destination back)",
          {{"dir", dir}});
    }
  }
  gauge->Set(orphans);
}

void PrintConfigErrors(const std::string& path,
                       const std::vector<config::ConfigError>& errors,
                       const absl::Status& status) {
  if (errors.empty()) {
    std::cerr << "promrelay: " << path << ": " << status.message() << "\n";
    return;
  }
  for (const config::ConfigError& e : errors) {
    std::cerr << "promrelay: " << path << ":" << (e.line > 0 ? "" : " ")
              << e.ToString() << "\n";
  }
}

bool SameListener(const config::ServerConfig& a,
                  const config::ServerConfig& b) {
  const bool tls_same = a.tls.has_value() == b.tls.has_value() &&
                        (!a.tls || (a.tls->cert_file == b.tls->cert_file &&
                                    a.tls->key_file == b.tls->key_file));
  return a.listen_address == b.listen_address && a.io_threads == b.io_threads &&
         tls_same;
}

}  // namespace

int RunProxy(const std::vector<std::string>& args) {
  Flags flags;
  std::string error;
  if (!ParseRunFlags(args, &flags, &error)) {
    std::cerr << "promrelay: " << error << "\n";
    return kExitUsage;
  }
  std::string level_text = flags.log_level;
  if (level_text.empty()) {
    const char* env = std::getenv("PROMRELAY_LOG_LEVEL");
    if (env != nullptr) level_text = env;
  }
  if (!level_text.empty()) {
    logging::Level level;
    if (!logging::ParseLevel(level_text, &level)) {
      std::cerr << "promrelay: unknown log level \"" << level_text
                << "\" (debug, info, warn, error)\n";
      return kExitUsage;
    }
    logging::SetLevel(level);
  }

  // Signals are taken synchronously by this thread (sigwait): block them
  // before any other thread exists, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<config::ConfigError> errors;
  auto loaded = config::LoadFromFile(flags.config, &errors);
  if (!loaded.ok()) {
    PrintConfigErrors(flags.config, errors, loaded.status());
    return kExitFailure;
  }
  std::shared_ptr<const config::Config> cfg = *loaded;
  logging::Info("starting promrelay",
                {{"version", PROMRELAY_VERSION},
                 {"config", flags.config},
                 {"destinations", cfg->remote_write.size()}});

  metrics::Registry* registry = &metrics::Default();
  registry
      ->AddGauge("promrelay_build_info",
                 "Always 1; the version is in the label.", {"version"})
      .With({PROMRELAY_VERSION})
      .Set(1);
  metrics::Gauge* orphan_gauge =
      &registry
           ->AddGauge("promrelay_queue_orphan_directories",
                      "Disk queue directories next to the configured ones "
                      "that belong to no configured destination.")
           .With({});

  QueueMaker queues(registry);
  Senders senders(registry);
  pipeline::Runtime runtime(
      [&queues](const config::Destination& d) { return queues.Make(d); },
      &senders, registry);
  absl::Status st = runtime.Apply(cfg);
  if (!st.ok()) {
    logging::Error("cannot start", {{"err", st}});
    std::cerr << "promrelay: " << st.message() << "\n";
    senders.StopAll(absl::Now());
    return kExitFailure;
  }
  registry->AddGauge("promrelay_config_last_reload_successful", "")
      .With({})
      .Set(1);
  registry
      ->AddGauge("promrelay_config_last_reload_success_timestamp_seconds", "")
      .With({})
      .Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  ReportOrphanQueues(*cfg, orphan_gauge);
  DiskQueueMetrics disk_metrics(registry, &runtime);

  const std::string path = flags.config;
  auto reload = [&runtime, &path, orphan_gauge, listener = cfg->server]() {
    absl::Status r = runtime.Reload(path);
    if (r.ok()) {
      auto now = runtime.config();
      if (!SameListener(listener, now->server)) {
        logging::Warn(
            "server.listen_address, io_threads and tls apply after a restart");
      }
      ReportOrphanQueues(*now, orphan_gauge);
    }
    return r;
  };

  server::ServerOptions opts;
  opts.registry = registry;
  opts.reload = reload;
  server::Server server(&runtime.pipeline(), opts);
  st = server.Start(cfg->server);
  if (!st.ok()) {
    logging::Error("cannot start the HTTP server", {{"err", st}});
    std::cerr << "promrelay: " << st.message() << "\n";
    server.Stop(absl::Now());
    senders.StopAll(absl::Now());
    return kExitFailure;
  }

  int sig = 0;
  for (;;) {
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      logging::Info("SIGHUP: reloading the configuration", {{"file", path}});
      reload().IgnoreError();  // logged by the runtime
      continue;
    }
    break;
  }

  const absl::Duration grace = runtime.config()->server.shutdown_timeout;
  const absl::Time deadline = absl::Now() + grace;
  logging::Info(
      "shutting down",
      {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}, {"timeout", grace}});
  // A second signal cuts the flush short.
  std::thread second([signals] {
    int again = 0;
    if (sigwait(&signals, &again) == 0) {
      logging::Warn("second signal: exiting without finishing the flush");
      std::_Exit(kExitFailure);
    }
  });
  second.detach();

  server.BeginShutdown();
  server.Stop(deadline);
  logging::Info("HTTP server stopped; sending what is queued");
  senders.StopAll(deadline);
  runtime.CloseQueues();
  queues.FlushDisk();
  logging::Info("stopped");
  return kExitOk;
}

}  // namespace promrelay::cli
