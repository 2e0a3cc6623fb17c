// The proxy's moving parts across config reloads: which destinations exist,
// their shard queues, and the Pipeline that feeds them. A reload swaps the
// whole set atomically: either every new destination got its queues and its
// sender and the pipeline switched over, or nothing changed and the old
// config keeps running.
//
// Queues belong to a destination *name*: a destination that keeps its name
// across a reload keeps its queues (and what is in them). Shard count and
// storage changes need a restart (logged); everything else applies at once.
#ifndef PROMRELAY_PROXY_PIPELINE_RUNTIME_H_
#define PROMRELAY_PROXY_PIPELINE_RUNTIME_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/config/config.h"
#include "proxy/metrics/metrics.h"
#include "proxy/pipeline/pipeline.h"

namespace promrelay::pipeline {

// Creates the shard queues of a destination that appears (memory or disk).
using QueueFactory = std::function<absl::StatusOr<DestinationQueues>(
    const config::Destination&)>;

// Told about destinations as they come and go; run.cc starts and stops the
// forwarders from here. Calls are serialized.
class DestinationObserver {
 public:
  virtual ~DestinationObserver() = default;
  // A new destination (at start or in a reload). An error fails the load.
  virtual absl::Status Added(const config::Destination& dest,
                             const DestinationQueues& queues) = 0;
  // A destination that kept its name; its settings may have changed. An
  // error fails the reload (destinations already updated are given their
  // old settings back).
  virtual absl::Status Updated(const config::Destination& dest) = 0;
  // A destination is gone (or an Added one is rolled back). Its queues are
  // closed right after this returns.
  virtual void Removed(const std::string& name) = 0;
};

class Runtime {
 public:
  // `observer` may be null. Metrics go to `registry` (nullptr: Default()).
  Runtime(QueueFactory queue_factory, DestinationObserver* observer,
          metrics::Registry* registry = nullptr);
  // Closes every queue.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Installs `config` (the first one or a new one). On error nothing changed.
  absl::Status Apply(std::shared_ptr<const config::Config> config);

  // Loads `path` and applies it; records the outcome in
  // promrelay_config_last_reload_successful and
  // promrelay_config_last_reload_success_timestamp_seconds. The error lists
  // every config problem with its line and field. `before_apply` (if set)
  // sees the loaded config before it is applied; its error fails the reload
  // like a config error (it is for checks outside the config file, such as
  // loading the server certificate it names).
  absl::Status Reload(const std::string& path,
                      const std::function<absl::Status(const config::Config&)>&
                          before_apply = nullptr);

  Pipeline& pipeline() { return pipeline_; }
  const Pipeline& pipeline() const { return pipeline_; }
  std::shared_ptr<const config::Config> config() const {
    return pipeline_.config();
  }

  // The current destinations' queues.
  std::vector<DestinationQueues> queues() const;

  // Closes every queue: later requests get 503 (Unavailable) and readers
  // drain what is left.
  void CloseQueues();

 private:
  QueueFactory queue_factory_;
  DestinationObserver* observer_;
  metrics::Registry* registry_;
  metrics::Gauge* reload_ok_;
  metrics::Gauge* reload_ts_;
  metrics::Counter* reloads_ok_;
  metrics::Counter* reloads_failed_;
  Pipeline pipeline_;

  mutable std::mutex mu_;  // serializes Apply/Reload; guards below
  std::shared_ptr<const config::Config> config_;
  std::map<std::string, DestinationQueues> queues_;
};

}  // namespace promrelay::pipeline

#endif  // PROMRELAY_PROXY_PIPELINE_RUNTIME_H_
