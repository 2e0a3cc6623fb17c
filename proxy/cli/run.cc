#include "proxy/cli/run.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

// A config file checked more often than this would cost CPU for nothing:
// kubelet itself refreshes mounted ConfigMaps about once a minute.
constexpr absl::Duration kMinWatchInterval = absl::Seconds(1);

struct Flags {
  std::string config;
  std::string log_level;
  std::string config_watch_interval;
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
    if (value("config-watch-interval", &flags->config_watch_interval)) {
      continue;
    }
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
    for (int i = 0; i < shards; ++i) {
      absl::StatusOr<std::shared_ptr<queue::DiskQueue>> dq =
          OpenShard(d, ShardDir(st.path, i), per);
      if (!dq.ok()) {
        return absl::Status(dq.status().code(),
                            absl::StrCat("storage.path: shard ", i, ": ",
                                         dq.status().message()));
      }
      q.shards.push_back(*std::move(dq));
    }
    q.shard_capacity_bytes = per;
    for (const auto& [i, dir] : ShardDirsFrom(st.path, shards)) {
      absl::StatusOr<std::shared_ptr<queue::DiskQueue>> dq =
          OpenShard(d, dir, per);
      if (!dq.ok()) {
        return absl::Status(dq.status().code(),
                            absl::StrCat("storage.path: shard ", i,
                                         " (left by a run with more shards): ",
                                         dq.status().message()));
      }
      const queue::Stats stats = (*dq)->GetStats();
      if (stats.records == 0) {
        (*dq)->Close();
        dq->reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        logging::Info(
            "removed an empty shard directory left by a run with "
            "more shards",
            {{"destination", d.name}, {"dir", dir}});
        continue;
      }
      logging::Warn(
          "shard directory left by a run with more shards: its records are "
          "sent, nothing new is added, and it is removed at a later start "
          "once empty",
          {{"destination", d.name},
           {"dir", dir},
           {"samples", stats.samples},
           {"shards", shards}});
      q.drain_shards.push_back(*std::move(dq));
    }
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
  // Opens (recovering) the disk queue in `dir`, logging what recovery found.
  absl::StatusOr<std::shared_ptr<queue::DiskQueue>> OpenShard(
      const config::Destination& d, const std::string& dir,
      uint64_t max_bytes) {
    const config::StorageConfig& st = *d.storage;
    queue::DiskQueueOptions o;
    o.directory = dir;
    o.max_bytes = max_bytes;
    o.on_full = QueueOnFull(st.on_full);
    o.fsync = QueueFsync(st.fsync);
    o.fsync_interval = st.fsync_interval;
    o.segment_bytes = st.segment_bytes;
    metrics::Histogram* hist = &fsync_hist_->With({d.name});
    o.fsync_observer = [hist](absl::Duration dur) {
      hist->Observe(absl::ToDoubleSeconds(dur));
    };
    absl::StatusOr<std::unique_ptr<queue::DiskQueue>> dq =
        queue::OpenDiskQueue(o);
    if (!dq.ok()) return dq.status();
    const queue::RecoveryReport& r = (*dq)->recovery();
    if (r.damaged()) {
      logging::Warn(
          "disk queue was damaged; skipped the corrupt records",
          {{"destination", d.name}, {"dir", dir}, {"summary", r.Summary()}});
      for (const std::string& m : r.messages) {
        logging::Warn("disk queue damage",
                      {{"destination", d.name}, {"dir", dir}, {"detail", m}});
      }
    } else if (r.records_recovered > 0) {
      logging::Info("disk queue recovered", {{"destination", d.name},
                                             {"dir", dir},
                                             {"records", r.records_recovered},
                                             {"samples", r.samples_recovered}});
    }
    std::shared_ptr<queue::DiskQueue> shared = std::move(*dq);
    std::lock_guard<std::mutex> lock(mu_);
    disk_queues_.push_back(shared);
    return shared;
  }

  // The queue directories storage_path/shard-<i> with i >= `from`, by i:
  // shards of a run whose queue_config.shards was higher.
  static std::map<int, std::string> ShardDirsFrom(const std::string& path,
                                                  int from) {
    std::map<int, std::string> out;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(path, ec), end;
         !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      int i = 0;
      if (!absl::StartsWith(name, "shard-") ||
          !absl::SimpleAtoi(absl::string_view(name).substr(6), &i) ||
          i < from || name != absl::StrCat("shard-", i)) {
        continue;
      }
      if (queue::IsQueueDirectory(it->path().string())) {
        out[i] = it->path().string();
      }
    }
    return out;
  }

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
  ~Senders() override { StopAll(absl::Now()); }

  // Memory-queue destinations send from `io_context`'s threads (the HTTP
  // server's), so a batch that an ingest request completes leaves from the
  // thread that handled the request. Disk-queue destinations keep threads
  // of their own: their reads and commits may wait for the disk. With a
  // single I/O thread, a reload on that thread would wait for senders that
  // need it to drain, so every destination then has its own threads.
  void UseIoContext(boost::asio::io_context* io_context, int io_threads) {
    io_context_ = io_threads >= 2 ? io_context : nullptr;
  }

  absl::Status Added(const config::Destination& dest,
                     const pipeline::DestinationQueues& queues) override {
    // Shards left over from a run with more shards are sent from too.
    auto sender = forward::DestinationSender::Create(
        dest, queues.AllShards(), registry_,
        dest.storage.has_value() ? nullptr : io_context_);
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
  boost::asio::io_context* io_context_ = nullptr;
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
      for (const auto& shard : q.AllShards()) {
        stats.push_back(shard->GetStats());
      }
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

// What a reload cannot change: the listener (the certificate files can).
bool SameListener(const config::ServerConfig& a,
                  const config::ServerConfig& b) {
  return a.listen_address == b.listen_address && a.io_threads == b.io_threads &&
         a.tls.has_value() == b.tls.has_value();
}

// "0s" (the default) turns watching off; anything else must be at least
// kMinWatchInterval.
bool ParseWatchInterval(const std::string& text, absl::Duration* out,
                        std::string* error) {
  if (text.empty()) {
    *out = absl::ZeroDuration();
    return true;
  }
  absl::StatusOr<absl::Duration> d = config::ParseDuration(text);
  if (!d.ok()) {
    *error = absl::StrCat("--config-watch-interval: ", d.status().message());
    return false;
  }
  if (*d != absl::ZeroDuration() && *d < kMinWatchInterval) {
    *error = absl::StrCat(
        "--config-watch-interval: must be 0s (off) or at least ",
        config::DurationString(kMinWatchInterval), ", got \"", text, "\"");
    return false;
  }
  *out = *d;
  return true;
}

// The SHA-256 (hex) of the file's bytes as they are now. The path is opened
// afresh each time, so a ConfigMap whose `..data` symlink kubelet swapped is
// read through the new link.
absl::StatusOr<std::string> FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read config file: ", std::strerror(errno)));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::DataLossError(
        absl::StrCat("cannot read config file: ", std::strerror(errno)));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_sha256(),
                 nullptr) != 1) {
    return absl::InternalError("SHA-256 of the config file failed");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), md_len));
}

// What the running configuration was loaded from and how the last load
// went, shared by every reload path (SIGHUP, POST /-/reload, the file
// watcher) so the watcher does not reload again what one of the others
// already applied.
class LoadedConfig {
 public:
  struct State {
    std::string loaded;   // SHA-256 of the running config ("" = unknown)
    std::string attempt;  // SHA-256 of the last file a reload read
    absl::Time attempt_time = absl::InfinitePast();
    bool last_failed = false;
  };

  explicit LoadedConfig(metrics::Registry* registry)
      : info_(&registry->AddGauge(
            "promrelay_config_info",
            "Always 1; sha256 is the SHA-256 of the configuration file bytes "
            "in use (compare with `sha256sum FILE`).",
            {"sha256"})) {}

  // After a successful load of a file whose bytes hashed to `sha256` just
  // before ("" = could not be read, so the watcher loads again on its next
  // check).
  void Loaded(const std::string& sha256) {
    std::lock_guard<std::mutex> lock(mu_);
    state_.attempt = sha256;
    state_.attempt_time = absl::Now();
    state_.last_failed = false;
    if (sha256 == state_.loaded) return;
    if (!state_.loaded.empty()) info_->Remove({state_.loaded});
    state_.loaded = sha256;
    if (!sha256.empty()) info_->With({sha256}).Set(1);
  }

  // After a failed load (the previous config keeps running).
  void Failed(const std::string& sha256) {
    std::lock_guard<std::mutex> lock(mu_);
    state_.attempt = sha256;
    state_.attempt_time = absl::Now();
    state_.last_failed = true;
  }

  State Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }

 private:
  metrics::Family<metrics::Gauge>* info_;
  mutable std::mutex mu_;
  State state_;
};

// Polls the config file every `interval` and reloads when its content
// (SHA-256, not mtime: kubelet's symlink swap changes inode and mtime, and
// an editor may keep them) differs from what is running. Polling rather
// than inotify: a watch on a ConfigMap file follows the old inode when the
// `..data` symlink is swapped.
//
// A content that failed to load is tried again every `kRetryFailedEvery`
// (or `interval`, if longer), because what made it fail may be outside the
// file (a secret file mounted after the ConfigMap); the runtime logs each
// failure and keeps the old config. After a failure the watcher also loads a
// file that was put back to what is running, so
// promrelay_config_last_reload_successful does not stay 0 for a config that
// is fine.
//
// It also watches the files `tls_files` names (the server certificate and
// key of the running config): when their content changes (cert-manager
// renewing a Secret), it reloads, which loads the new certificate.
class ConfigWatcher {
 public:
  ConfigWatcher(std::string path, absl::Duration interval,
                const LoadedConfig* loaded,
                std::function<absl::Status()> reload,
                std::function<std::vector<std::string>()> tls_files)
      : path_(std::move(path)),
        interval_(interval),
        loaded_(loaded),
        reload_(std::move(reload)),
        tls_files_(std::move(tls_files)) {
    tls_seen_ = TlsFingerprint();
  }
  ~ConfigWatcher() { Stop(); }
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  void Start() {
    logging::Info("watching the configuration file for changes",
                  {{"file", path_}, {"interval", interval_}});
    thread_ = std::thread([this] { Loop(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr absl::Duration kRetryFailedEvery = absl::Minutes(1);

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_),
                   [this] { return stop_; });
      if (stop_) return;
      lock.unlock();
      Check();
      lock.lock();
    }
  }

  // SHA-256 of each TLS file, joined ("" for one that cannot be read).
  std::string TlsFingerprint() const {
    std::string out;
    for (const std::string& file : tls_files_()) {
      absl::StatusOr<std::string> sha = FileSha256(file);
      absl::StrAppend(&out, sha.ok() ? *sha : "", ";");
    }
    return out;
  }

  void Check() {
    const std::string tls = TlsFingerprint();
    if (tls != tls_seen_) {
      tls_seen_ = tls;
      logging::Info("server TLS certificate or key changed; reloading");
      reload_().IgnoreError();  // logged by the runtime
      return;
    }
    absl::StatusOr<std::string> sha = FileSha256(path_);
    if (!sha.ok()) {
      // Once per distinct error: a file that stays missing is not news
      // every interval.
      const std::string err(sha.status().message());
      if (err != last_read_error_) {
        logging::Warn("cannot check the configuration file",
                      {{"file", path_}, {"err", sha.status()}});
        last_read_error_ = err;
      }
      return;
    }
    last_read_error_.clear();
    const LoadedConfig::State st = loaded_->Get();
    if (!st.last_failed && !st.loaded.empty() && *sha == st.loaded) return;
    if (st.last_failed && *sha == st.attempt) {
      if (absl::Now() - st.attempt_time <
          std::max(kRetryFailedEvery, interval_)) {
        return;
      }
      logging::Info("retrying the configuration that failed to load",
                    {{"file", path_}, {"sha256", *sha}});
    } else {
      logging::Info("configuration file changed; reloading",
                    {{"file", path_}, {"sha256", *sha}});
    }
    reload_().IgnoreError();  // logged by the runtime
  }

  const std::string path_;
  const absl::Duration interval_;
  const LoadedConfig* loaded_;
  const std::function<absl::Status()> reload_;
  const std::function<std::vector<std::string>()> tls_files_;
  std::string last_read_error_;  // only the watcher thread uses it
  std::string tls_seen_;         // only the watcher thread uses it

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

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
  absl::Duration watch_interval;
  if (!ParseWatchInterval(flags.config_watch_interval, &watch_interval,
                          &error)) {
    std::cerr << "promrelay: " << error << "\n";
    return kExitUsage;
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

  // Hashed before loading: if the file changes in between, the watcher sees
  // a difference and loads it again (never misses a change).
  absl::StatusOr<std::string> start_sha = FileSha256(flags.config);
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
                 {"sha256", start_sha.ok() ? *start_sha : "unknown"},
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
  LoadedConfig loaded_config(registry);
  const std::string path = flags.config;
  // One path for SIGHUP, POST /-/reload and the file watcher; they may race
  // (signal thread, HTTP threads, watcher thread), hence the mutex.
  std::mutex reload_mu;
  server::Server* http_server = nullptr;  // set once it has started
  auto reload = [&runtime, &path, &reload_mu, &loaded_config, orphan_gauge,
                 &http_server, listener = cfg->server]() {
    std::lock_guard<std::mutex> lock(reload_mu);
    absl::StatusOr<std::string> sha = FileSha256(path);
    // The certificate files are read again on every reload (a renewed
    // certificate needs no restart), before anything is applied: one that
    // does not load fails the reload and the running config stays.
    absl::Status r = runtime.Reload(path, [&](const config::Config& next) {
      return http_server != nullptr ? http_server->StageTls(next.server)
                                    : absl::OkStatus();
    });
    if (!r.ok()) {
      loaded_config.Failed(sha.ok() ? *sha : "");
      return r;
    }
    if (http_server != nullptr) http_server->CommitStagedTls();
    auto now = runtime.config();
    if (!SameListener(listener, now->server)) {
      logging::Warn(
          "server.listen_address, io_threads and turning tls on or off apply "
          "after a restart");
    }
    ReportOrphanQueues(*now, orphan_gauge);
    loaded_config.Loaded(sha.ok() ? *sha : "");
    return r;
  };

  server::ServerOptions opts;
  opts.registry = registry;
  opts.reload = reload;
  server::Server server(&runtime.pipeline(), opts);
  senders.UseIoContext(&server.io_context(),
                       server::IoThreadCount(cfg->server));
  // Senders may run on the server's loop: they stop before it is destroyed,
  // on every way out of here.
  absl::Cleanup stop_senders = [&senders] { senders.StopAll(absl::Now()); };

  absl::Status st = runtime.Apply(cfg);
  if (!st.ok()) {
    logging::Error("cannot start", {{"err", st}});
    std::cerr << "promrelay: " << st.message() << "\n";
    return kExitFailure;
  }
  registry->AddGauge("promrelay_config_last_reload_successful", "")
      .With({})
      .Set(1);
  registry
      ->AddGauge("promrelay_config_last_reload_success_timestamp_seconds", "")
      .With({})
      .Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  loaded_config.Loaded(start_sha.ok() ? *start_sha : "");
  ReportOrphanQueues(*cfg, orphan_gauge);
  DiskQueueMetrics disk_metrics(registry, &runtime);

  st = server.Start(cfg->server);
  if (!st.ok()) {
    logging::Error("cannot start the HTTP server", {{"err", st}});
    std::cerr << "promrelay: " << st.message() << "\n";
    senders.StopAll(absl::Now());
    server.Stop(absl::Now());
    return kExitFailure;
  }

  {
    std::lock_guard<std::mutex> lock(reload_mu);
    http_server = &server;
  }

  std::unique_ptr<ConfigWatcher> watcher;
  if (watch_interval > absl::ZeroDuration()) {
    watcher = std::make_unique<ConfigWatcher>(
        path, watch_interval, &loaded_config, reload, [&runtime] {
          std::vector<std::string> files;
          const auto now = runtime.config();
          if (now->server.tls) {
            files = {now->server.tls->cert_file, now->server.tls->key_file};
          }
          return files;
        });
    watcher->Start();
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
  // A second SIGTERM or SIGINT cuts the flush short. SIGHUP does not (a
  // config reloader may send one at any time); it stays blocked, unused.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  std::thread second([stop_signals] {
    int again = 0;
    if (sigwait(&stop_signals, &again) == 0) {
      logging::Warn("second signal: exiting without finishing the flush");
      std::_Exit(kExitFailure);
    }
  });
  second.detach();

  // No reload may start while the destinations are being shut down.
  if (watcher) watcher->Stop();
  server.DrainRequests(deadline);
  logging::Info("no request in progress; sending what is queued");
  // Before the server stops: memory-queue destinations send from its I/O
  // threads.
  senders.StopAll(deadline);
  server.Stop(deadline);
  runtime.CloseQueues();
  queues.FlushDisk();
  logging::Info("stopped");
  return kExitOk;
}

}  // namespace promrelay::cli
