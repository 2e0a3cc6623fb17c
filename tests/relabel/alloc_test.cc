// The hot path must not allocate per series once a builder is warm. Counts
// calls to the global operator new around steady-state loops.
#include <atomic>
#include <cstdlib>
#include <new>

#include "tests/relabel/helpers.h"

// Every non-aligned form is replaced so that new/delete pairs stay matched
// under ASan. GCC pairs the replaced operator new with free() and warns;
// they match.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<long> g_news{0};
}  // namespace

void* operator new(size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace promrelay::relabel::testing {
namespace {

long CountNews(const RuleSet& rules,
               const std::vector<std::vector<Label>>& inputs, LabelBuilder& b) {
  long before = g_news.load();
  size_t kept = 0;
  for (int round = 0; round < 50; ++round) {
    for (const auto& in : inputs) {
      b.Reset(in);
      if (rules.Apply(b)) kept += b.Result().size();
    }
  }
  long after = g_news.load();
  CHECK(kept > 0);
  return after - before;
}

TEST_CASE("steady state: no allocation per series", "[relabel][alloc]") {
  std::vector<std::vector<Label>> inputs = {
      {{"__name__", "envoy_cluster_upstream_rq_total"},
       {"instance", "10.0.0.12:9901"},
       {"job", "envoy-self"},
       {"project_id", "p-1"},
       {"service_id", "s-1"},
       {"workspace_id", "w-1"}},
      {{"__name__", "container_cpu_usage_seconds_total"},
       {"container", "App"},
       {"instance", "10.0.1.5:10250"},
       {"job", "cadvisor"},
       {"project_id", "p-1"}},
      {{"__meta_kubernetes_pod_label_app", "api"},
       {"instance", "x:1"},
       {"job", "shuttle"}},
  };
  // Rules that avoid RE2's submatch engines (which allocate inside RE2).
  std::vector<std::vector<RuleSpec>> rule_sets = {
      {R().src({"job"})
           .re("shuttle|node-exporter|kube-state-metrics|envoy-self")
           .action("keep"),
       R().re("project_id|service_id|workspace_id").action("labeldrop")},
      {R().src({"job"})
           .re("shuttle|node-exporter|kube-state-metrics|envoy-self")
           .action("drop")},
      {R().src({"job", "instance"}).target("key"),
       R().src({"container"}).target("container_lc").action("lowercase"),
       R().src({"instance"}).target("shard").action("hashmod").mod(16),
       R().re("__meta_kubernetes_pod_label_(.+)")
           .repl("label_$1")
           .action("labelmap"),
       R().src({"__name__"}).re(".*_total").target("kind").repl("counter"),
       R().src({"instance"}).re("[^:]+:\\d+").action("keep"),
       R().src({"job"}).re("(.*)").target("job_copy").repl("${1}-x"),
       R().re("__meta_.*").action("labeldrop")},
  };
  for (const auto& specs : rule_sets) {
    RuleSet rules = MustCompile(specs);
    LabelBuilder b;
    // The first pass grows the builder's buffers: proves the counter works.
    CHECK(CountNews(rules, inputs, b) > 0);
    CHECK(CountNews(rules, inputs, b) == 0);
  }
}

}  // namespace
}  // namespace promrelay::relabel::testing
