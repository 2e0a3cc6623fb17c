#include "proxy/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <variant>

namespace promrelay::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)) {
  std::sort(upper_bounds_.begin(), upper_bounds_.end());
  upper_bounds_.erase(std::unique(upper_bounds_.begin(), upper_bounds_.end()),
                      upper_bounds_.end());
  // +Inf is implicit; an explicit one would produce a duplicate le="+Inf".
  while (!upper_bounds_.empty() && std::isinf(upper_bounds_.back()) &&
         upper_bounds_.back() > 0) {
    upper_bounds_.pop_back();
  }
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1);
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  // Buckets are inclusive upper bounds (le), as in Prometheus.
  size_t i = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) -
             upper_bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  s.cumulative_counts.resize(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative_counts[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> DurationBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,   1,      2.5,   5,    10,    30,   60};
}

namespace {

using AnyFamily = std::variant<std::unique_ptr<Family<Counter>>,
                               std::unique_ptr<Family<Gauge>>,
                               std::unique_ptr<Family<Histogram>>>;

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, res.ptr);
  }
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

// HELP text escapes backslash and newline; label values also escape '"'.
void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quote) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default:
        out += c;
    }
  }
}

// Writes `name{a="x",b="y"<extra>}` (no braces when there are no labels).
void AppendSeriesName(std::string& out, std::string_view name,
                      const std::vector<std::string>& label_names,
                      const std::vector<std::string>& label_values,
                      std::string_view extra_name = {},
                      std::string_view extra_value = {}) {
  out += name;
  bool any = false;
  for (size_t i = 0; i < label_names.size() && i < label_values.size(); ++i) {
    out += any ? ',' : '{';
    any = true;
    out += label_names[i];
    out += "=\"";
    AppendEscaped(out, label_values[i], true);
    out += '"';
  }
  if (!extra_name.empty()) {
    out += any ? ',' : '{';
    any = true;
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  if (any) out += '}';
}

void AppendHeader(std::string& out, const std::string& name,
                  const std::string& help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendEscaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void ExposeFamily(std::string& out, const Family<Counter>& f) {
  AppendHeader(out, f.name(), f.help(), "counter");
  f.ForEach([&](const std::vector<std::string>& values, const Counter& c) {
    AppendSeriesName(out, f.name(), f.label_names(), values);
    out += ' ';
    AppendDouble(out, c.Value());
    out += '\n';
  });
}

void ExposeFamily(std::string& out, const Family<Gauge>& f) {
  AppendHeader(out, f.name(), f.help(), "gauge");
  f.ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
    AppendSeriesName(out, f.name(), f.label_names(), values);
    out += ' ';
    AppendDouble(out, g.Value());
    out += '\n';
  });
}

void ExposeFamily(std::string& out, const Family<Histogram>& f) {
  AppendHeader(out, f.name(), f.help(), "histogram");
  const std::string bucket = f.name() + "_bucket";
  const std::string sum = f.name() + "_sum";
  const std::string count = f.name() + "_count";
  f.ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
    Histogram::Snapshot s = h.Take();
    std::string le;
    for (size_t i = 0; i < s.cumulative_counts.size(); ++i) {
      le.clear();
      if (i < s.upper_bounds.size()) {
        AppendDouble(le, s.upper_bounds[i]);
      } else {
        le = "+Inf";
      }
      AppendSeriesName(out, bucket, f.label_names(), values, "le", le);
      out += ' ';
      AppendUint(out, s.cumulative_counts[i]);
      out += '\n';
    }
    AppendSeriesName(out, sum, f.label_names(), values);
    out += ' ';
    AppendDouble(out, s.sum);
    out += '\n';
    AppendSeriesName(out, count, f.label_names(), values);
    out += ' ';
    AppendUint(out, s.count);
    out += '\n';
  });
}

bool HasChildren(const AnyFamily& any) {
  return std::visit(
      [](const auto& f) {
        bool found = false;
        f->ForEach([&](const auto&, const auto&) { found = true; });
        return found;
      },
      any);
}

[[noreturn]] void Die(const std::string& name, const char* why) {
  std::fprintf(stderr, "promrelay: metric %s registered twice with %s\n",
               name.c_str(), why);
  std::abort();
}

template <typename M>
Family<M>& AddFamily(std::mutex& mu, std::map<std::string, AnyFamily>& families,
                     std::string name, std::string help,
                     std::vector<std::string> label_names,
                     std::function<std::unique_ptr<M>()> make) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = families.find(name);
  if (it != families.end()) {
    auto* existing = std::get_if<std::unique_ptr<Family<M>>>(&it->second);
    if (existing == nullptr) Die(name, "a different type");
    if ((*existing)->label_names() != label_names) {
      Die(name, "different label names");
    }
    return **existing;
  }
  auto family = std::make_unique<Family<M>>(
      name, std::move(help), std::move(label_names), std::move(make));
  Family<M>& ref = *family;
  // A family without labels has exactly one child: create it now so the
  // series is exposed (as 0) before its first increment.
  if (ref.label_names().empty()) ref.With({});
  families.emplace(std::move(name), std::move(family));
  return ref;
}

}  // namespace

struct Registry::Impl {
  // Serializes expositions (and refresher removal against them).
  mutable std::mutex expose_mu;
  mutable std::mutex mu;
  std::map<std::string, AnyFamily> families;  // sorted by name
  std::map<uint64_t, std::function<void()>> refreshers;
  uint64_t next_refresher_id = 1;
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  return AddFamily<Counter>(impl_->mu, impl_->families, std::move(name),
                            std::move(help), std::move(label_names),
                            [] { return std::make_unique<Counter>(); });
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  return AddFamily<Gauge>(impl_->mu, impl_->families, std::move(name),
                          std::move(help), std::move(label_names),
                          [] { return std::make_unique<Gauge>(); });
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> upper_bounds) {
  return AddFamily<Histogram>(impl_->mu, impl_->families, std::move(name),
                              std::move(help), std::move(label_names),
                              [bounds = std::move(upper_bounds)] {
                                return std::make_unique<Histogram>(bounds);
                              });
}

uint64_t Registry::AddRefresher(std::function<void()> refresh) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  uint64_t id = impl_->next_refresher_id++;
  impl_->refreshers.emplace(id, std::move(refresh));
  return id;
}

void Registry::RemoveRefresher(uint64_t id) {
  // Taking the exposition lock too means that once this returns, no
  // exposition is still running the removed refresher.
  std::lock_guard<std::mutex> expose_lock(impl_->expose_mu);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->refreshers.erase(id);
}

std::string Registry::Expose() const {
  std::lock_guard<std::mutex> expose_lock(impl_->expose_mu);
  std::vector<std::function<void()>> refreshers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& [id, r] : impl_->refreshers) refreshers.push_back(r);
  }
  // Outside `mu`: a refresher may register or look up families.
  for (const auto& r : refreshers) r();

  std::string out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [name, any] : impl_->families) {
    // Families whose every child is labelled and none exists yet expose
    // nothing, as client_golang does.
    if (!HasChildren(any)) continue;
    std::visit([&](const auto& f) { ExposeFamily(out, *f); }, any);
  }
  return out;
}

Registry& Default() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace promrelay::metrics
