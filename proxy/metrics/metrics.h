// Self-metrics: a registry of counters, gauges and histograms with labels,
// exposed in the Prometheus text format (version 0.0.4) on GET /metrics.
#ifndef PROMRELAY_PROXY_METRICS_METRICS_H_
#define PROMRELAY_PROXY_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace promrelay::metrics {

class Counter {
 public:
  void Inc(double delta = 1) {
    value_.fetch_add(delta, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);
  // Cumulative counts per bucket (the last is +Inf), the sum and the count.
  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Take() const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bucket + Inf
  std::atomic<double> sum_{0};
};

// Default buckets for durations in seconds (1ms .. 60s).
std::vector<double> DurationBuckets();

enum class Type { kCounter, kGauge, kHistogram };

// A metric name with a fixed list of label names; one child per distinct
// label-value tuple. With() returns a reference that stays valid for the
// registry's lifetime: look it up once, keep it, Inc() on the hot path.
template <typename M>
class Family {
 public:
  Family(std::string name, std::string help,
         std::vector<std::string> label_names,
         std::function<std::unique_ptr<M>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  M& With(std::initializer_list<std::string_view> label_values) {
    std::vector<std::string> key(label_values.begin(), label_values.end());
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = children_[key];
    if (!slot) slot = make_();
    return *slot;
  }
  // Removes the child (for example a destination removed by a reload).
  void Remove(std::initializer_list<std::string_view> label_values) {
    std::vector<std::string> key(label_values.begin(), label_values.end());
    std::lock_guard<std::mutex> lock(mu_);
    children_.erase(key);
  }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  template <typename F>
  void ForEach(F&& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [values, child] : children_) f(values, *child);
  }

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<M>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  // Registering the same name twice returns the first family (label names
  // and type must match; a mismatch is a programming error and aborts).
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(
      std::string name, std::string help,
      std::vector<std::string> label_names = {},
      std::vector<double> upper_bounds = DurationBuckets());
  // Runs before every exposition, e.g. to refresh gauges read from a queue.
  // Returns an id for RemoveRefresher (call it before whatever the refresher
  // reads is destroyed).
  uint64_t AddRefresher(std::function<void()> refresh);
  void RemoveRefresher(uint64_t id);

  // Prometheus text exposition format 0.0.4, families sorted by name.
  std::string Expose() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The process-wide registry served on /metrics.
Registry& Default();

}  // namespace promrelay::metrics

#endif  // PROMRELAY_PROXY_METRICS_METRICS_H_
