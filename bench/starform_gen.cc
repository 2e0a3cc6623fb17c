#include "bench/starform_gen.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/series_hash.h"
#include "snappy.h"

namespace promrelay::bench {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A bijection on [0, 2^bits): odd multiplier then xor-shift, so that ids look
// random while distinct entities keep distinct ids.
uint64_t Scramble(uint64_t x, int bits) {
  const uint64_t mask = (bits == 64) ? ~0ull : ((1ull << bits) - 1);
  const int half = bits / 2;
  x = (x * 0x9e3779b97f4a7c15ull) & mask;
  x ^= x >> half;
  x = (x * 0xbf58476d1ce4e5b9ull) & mask;
  x ^= x >> half;
  x = (x * 0x94d049bb133111ebull) & mask;
  x ^= x >> half;
  return x;
}

// `chars` base-32 characters of Scramble(x): an injective, random-looking id.
std::string Id(uint64_t x, int chars, uint64_t salt) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  uint64_t v = Scramble(x + salt * 0x5851f42d4c957f2dull, chars * 5);
  std::string s(chars, '0');
  for (int i = chars - 1; i >= 0; --i) {
    s[i] = kAlphabet[v & 31];
    v >>= 5;
  }
  return s;
}

std::string Hex(uint64_t x, int digits, uint64_t salt) {
  uint64_t v = Scramble(x + salt * 0x5851f42d4c957f2dull, digits * 4);
  std::string s(digits, '0');
  for (int i = digits - 1; i >= 0; --i) {
    s[i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  }
  return s;
}

uint64_t Rand(uint64_t seed, uint64_t a, uint64_t b) {
  return Mix64(seed * 0x2545f4914f6cdd1dull ^ Mix64(a + 0x1234567) ^
               Mix64(b * 0x9e3779b97f4a7c15ull + 77));
}
double Unit(uint64_t r) { return (r >> 11) * (1.0 / 9007199254740992.0); }

constexpr const char* kServiceNames[] = {
    "web",      "api",    "worker", "frontend", "backend",  "cron",
    "auth",     "search", "media",  "payments", "notifier", "gateway",
    "checkout", "admin",  "ingest", "scheduler"};

// The tenant a customer workload belongs to. Entities are pods: three
// replicas per service, four services per project, two projects per
// workspace, thirty pods per node.
struct Tenant {
  std::string workspace_id, project_id, service_id, namespace_, service, pod,
      node, node_ip;
};

Tenant TenantOf(uint64_t pod) {
  Tenant t;
  uint64_t svc = pod / 3, prj = svc / 4, ws = prj / 2, node = pod / 30;
  t.workspace_id = absl::StrCat("ws_", Id(ws, 10, 1));
  t.project_id = absl::StrCat("prj_", Id(prj, 10, 2));
  t.service_id = absl::StrCat("svc_", Id(svc, 10, 3));
  t.namespace_ = absl::StrCat("prj-", Id(prj, 8, 4));
  t.service = absl::StrCat(kServiceNames[svc % 16], "-", Id(svc, 4, 5));
  t.pod = absl::StrCat(t.service, "-", Hex(svc, 9, 6), "-", Id(pod, 5, 7));
  t.node = absl::StrCat("pool-std-8vcpu-", Id(node, 5, 8));
  t.node_ip = absl::StrFormat("10.%d.%d.%d", 100 + (node >> 16) % 100,
                              (node >> 8) & 255, node & 255);
  return t;
}

std::string ClusterId(uint64_t i) {
  return absl::StrFormat("sf-fra1-c%03d", 14 + i / 100000);
}

struct Family {
  const char* job;
  int weight;    // share of series, out of 100
  int variants;  // series per entity
  // Fills the labels of variant `v` of entity `e`; sets counter/base/step.
  void (*fill)(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r);
};

void Common(Labels& l, const char* job, uint64_t i) {
  l.emplace_back("job", job);
  l.emplace_back("cluster_id", ClusterId(i));
}

// --- customer jobs -------------------------------------------------------

void FillCadvisor(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  static constexpr struct {
    const char* name;
    bool counter;
    double base, step;
  } kM[] = {
      {"container_cpu_usage_seconds_total", true, 5000, 3.2},
      {"container_cpu_user_seconds_total", true, 3500, 2.1},
      {"container_cpu_system_seconds_total", true, 1500, 1.1},
      {"container_cpu_cfs_throttled_seconds_total", true, 40, 0.05},
      {"container_memory_working_set_bytes", false, 268435456, 1048576},
      {"container_memory_rss", false, 201326592, 524288},
      {"container_memory_cache", false, 50331648, 262144},
      {"container_spec_memory_limit_bytes", false, 536870912, 0},
      {"container_network_receive_bytes_total", true, 9.8e9, 1.2e6},
      {"container_network_transmit_bytes_total", true, 7.1e9, 8.4e5},
      {"container_fs_reads_bytes_total", true, 1.3e8, 4096},
      {"container_fs_writes_bytes_total", true, 4.4e8, 16384},
  };
  Tenant t = TenantOf(e);
  const auto& m = kM[v];
  l.emplace_back("__name__", m.name);
  l.emplace_back("container", t.service.substr(0, t.service.find('-')));
  l.emplace_back("instance", t.node_ip + ":10250");
  l.emplace_back("namespace", t.namespace_);
  l.emplace_back("node", t.node);
  l.emplace_back("pod", t.pod);
  l.emplace_back("project_id", t.project_id);
  l.emplace_back("service_id", t.service_id);
  l.emplace_back("workspace_id", t.workspace_id);
  s.counter = m.counter;
  s.base = m.base * (0.5 + Unit(r));
  s.step = m.step * (0.5 + Unit(Mix64(r)));
}

void FillEnvoy(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  // One HTTPRoute per web service, seen by two gateway replicas.
  static constexpr const char* kCodes[] = {"200", "201", "204", "301", "304",
                                           "400", "401", "403", "404", "429",
                                           "500", "502", "503"};
  static constexpr const char* kLe[] = {"0.5",  "1",    "5",     "10",  "25",
                                        "50",   "100",  "250",   "500", "1000",
                                        "2500", "5000", "10000", "+Inf"};
  uint64_t route = e / 2, replica = e % 2;
  Tenant t = TenantOf(route * 3);
  l.emplace_back("envoy_cluster_name", absl::StrCat("httproute/", t.namespace_,
                                                    "/", t.service, "/rule/0"));
  l.emplace_back("instance", absl::StrFormat("10.244.%d.%d:19001",
                                             static_cast<int>(replica),
                                             static_cast<int>(route % 250)));
  l.emplace_back("namespace", "envoy-gateway-system");
  l.emplace_back("pod",
                 absl::StrCat("envoy-default-eg-e41e7b31-", Hex(replica, 10, 9),
                              "-", Id(replica, 5, 10)));
  l.emplace_back("project_id", t.project_id);
  l.emplace_back("service_id", t.service_id);
  l.emplace_back("workspace_id", t.workspace_id);
  s.counter = true;
  if (v < 13) {
    l.emplace_back("__name__", "envoy_cluster_upstream_rq_total");
    l.emplace_back("envoy_response_code", kCodes[v]);
    s.base = (v == 0 ? 2e6 : 2e4) * Unit(r);
    s.step = (v == 0 ? 900 : 9) * Unit(Mix64(r));
  } else if (v < 27) {
    l.emplace_back("__name__", "envoy_cluster_upstream_rq_time_bucket");
    l.emplace_back("le", kLe[v - 13]);
    s.base = 2e6 * (v - 12) / 14.0;
    s.step = 900.0 * (v - 12) / 14.0;
  } else if (v == 27) {
    l.emplace_back("__name__", "envoy_cluster_upstream_rq_time_sum");
    s.base = 9e7 * Unit(r);
    s.step = 40000;
  } else if (v == 28) {
    l.emplace_back("__name__", "envoy_cluster_upstream_rq_time_count");
    s.base = 2e6;
    s.step = 900;
  } else {
    l.emplace_back("__name__", "envoy_cluster_upstream_cx_active");
    s.counter = false;
    s.base = 40 * Unit(r);
    s.step = 6;
  }
}

void FillKubelet(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  static constexpr const char* kM[] = {"kubelet_volume_stats_used_bytes",
                                       "kubelet_volume_stats_capacity_bytes",
                                       "kubelet_volume_stats_available_bytes",
                                       "kubelet_volume_stats_inodes_used"};
  Tenant t = TenantOf(e);
  l.emplace_back("__name__", kM[v]);
  l.emplace_back("instance", t.node_ip + ":10250");
  l.emplace_back("metrics_path", "/metrics");
  l.emplace_back("namespace", t.namespace_);
  l.emplace_back("node", t.node);
  l.emplace_back("persistentvolumeclaim", absl::StrCat("data-", t.pod));
  l.emplace_back("project_id", t.project_id);
  l.emplace_back("service_id", t.service_id);
  l.emplace_back("workspace_id", t.workspace_id);
  s.counter = false;
  s.base = (v == 3 ? 5e4 : 1.07e10) * (0.2 + Unit(r));
  s.step = v == 1 ? 0 : 1e5;
}

// --- platform jobs -------------------------------------------------------

void FillKsm(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  static constexpr const char* kPhases[] = {"Pending", "Running", "Succeeded",
                                            "Failed", "Unknown"};
  Tenant t = TenantOf(e);
  l.emplace_back("container", "kube-state-metrics");
  l.emplace_back("instance", "10.244.0.17:8080");
  l.emplace_back("namespace", t.namespace_);
  l.emplace_back("pod", t.pod);
  l.emplace_back("uid", absl::StrCat(Hex(e, 8, 11), "-", Hex(e, 4, 12), "-4",
                                     Hex(e, 3, 13), "-a", Hex(e, 3, 14), "-",
                                     Hex(e, 12, 15)));
  s.counter = false;
  s.step = 0;
  if (v < 5) {
    l.emplace_back("__name__", "kube_pod_status_phase");
    l.emplace_back("phase", kPhases[v]);
    s.base = v == 1 ? 1 : 0;
  } else if (v < 7) {
    l.emplace_back("__name__", "kube_pod_container_resource_requests");
    l.emplace_back("resource", v == 5 ? "cpu" : "memory");
    l.emplace_back("unit", v == 5 ? "core" : "byte");
    s.base = v == 5 ? 0.25 : 268435456;
  } else if (v == 7) {
    l.emplace_back("__name__", "kube_pod_container_status_restarts_total");
    s.counter = true;
    s.base = static_cast<double>(r % 4);
  } else {
    // The join's right side: tenant identity of every pod, platform-owned.
    l.emplace_back("__name__", "kube_pod_labels");
    l.emplace_back("project_id", t.project_id);
    l.emplace_back("service_id", t.service_id);
    l.emplace_back("workspace_id", t.workspace_id);
    s.base = 1;
  }
}

void FillNodeExporter(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  static constexpr const char* kModes[] = {
      "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"};
  uint64_t node = e;
  std::string ip = absl::StrFormat("10.%d.%d.%d", 100 + (node >> 16) % 100,
                                   (node >> 8) & 255, node & 255);
  l.emplace_back("container", "node-exporter");
  l.emplace_back("endpoint", "metrics");
  l.emplace_back("instance", ip + ":9100");
  l.emplace_back("namespace", "monitoring");
  l.emplace_back("node", absl::StrCat("pool-std-8vcpu-", Id(node, 5, 8)));
  l.emplace_back("pod", absl::StrCat("node-exporter-", Id(node, 5, 16)));
  if (v < 64) {  // 8 CPUs x 8 modes
    l.emplace_back("__name__", "node_cpu_seconds_total");
    l.emplace_back("cpu", std::to_string(v / 8));
    l.emplace_back("mode", kModes[v % 8]);
    s.counter = true;
    s.base = 1e6 * Unit(r);
    s.step = (v % 8 == 0) ? 11.0 : 0.7;
  } else if (v < 68) {
    static constexpr const char* kMounts[] = {"/", "/var/lib/kubelet",
                                              "/var/lib/containerd", "/boot"};
    l.emplace_back("__name__", "node_filesystem_avail_bytes");
    l.emplace_back("device", v == 67 ? "/dev/vda15" : "/dev/vda1");
    l.emplace_back("fstype", v == 67 ? "vfat" : "ext4");
    l.emplace_back("mountpoint", kMounts[v - 64]);
    s.counter = false;
    s.base = 8e10 * Unit(r);
    s.step = 3e6;
  } else if (v < 72) {
    static constexpr const char* kM[] = {"node_network_receive_bytes_total",
                                         "node_network_transmit_bytes_total",
                                         "node_network_receive_packets_total",
                                         "node_network_transmit_packets_total"};
    l.emplace_back("__name__", kM[v - 68]);
    l.emplace_back("device", "eth0");
    s.counter = true;
    s.base = 5e11 * Unit(r);
    s.step = 2e7;
  } else {
    static constexpr const char* kM[] = {"node_memory_MemAvailable_bytes",
                                         "node_memory_MemTotal_bytes",
                                         "node_load1",
                                         "node_load5",
                                         "node_load15",
                                         "node_boot_time_seconds",
                                         "node_filefd_allocated",
                                         "node_context_switches_total"};
    l.emplace_back("__name__", kM[v - 72]);
    s.counter = v == 79;
    s.base = v < 74 ? 3.3e10 : v < 77 ? 2.5 : 1.7e9 * Unit(r);
    s.step = v < 74 ? 1e8 : v < 77 ? 0.4 : 1000;
  }
  l.emplace_back("service", "node-exporter");
}

void FillEnvoySelf(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  // The gateway's own health; per-route listener stats carry the tenant.
  static constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  uint64_t route = e / 2, replica = e % 2;
  l.emplace_back("container", "envoy");
  l.emplace_back("gateway", "eg");
  l.emplace_back("instance", absl::StrFormat("10.244.%d.%d:19001",
                                             static_cast<int>(replica),
                                             static_cast<int>(route % 250)));
  l.emplace_back("namespace", "envoy-gateway-system");
  l.emplace_back("pod",
                 absl::StrCat("envoy-default-eg-e41e7b31-", Hex(replica, 10, 9),
                              "-", Id(replica, 5, 10)));
  s.counter = true;
  if (v < 5) {
    Tenant t = TenantOf(route * 3);
    l.emplace_back("__name__", "envoy_http_downstream_rq_xx");
    l.emplace_back("envoy_http_conn_manager_prefix",
                   absl::StrCat("https-", t.service));
    l.emplace_back("envoy_response_code_class", kClasses[v]);
    l.emplace_back("project_id", t.project_id);
    l.emplace_back("service_id", t.service_id);
    l.emplace_back("workspace_id", t.workspace_id);
    s.base = 1e5 * Unit(r);
    s.step = v == 1 ? 400 : 3;
  } else {
    static constexpr const char* kM[] = {
        "envoy_server_memory_allocated", "envoy_server_uptime",
        "envoy_cluster_manager_active_clusters",
        "envoy_server_total_connections"};
    l.emplace_back("__name__", kM[v - 5]);
    l.emplace_back("route_shard", std::to_string(route));
    s.counter = v == 6;
    s.base = 1e8 * Unit(r);
    s.step = 15;
  }
}

void FillShuttle(uint64_t e, int v, Labels& l, GenSeries& s, uint64_t r) {
  static constexpr const char* kResources[] = {
      "pods",       "services",   "deployments",
      "httproutes", "namespaces", "persistentvolumeclaims"};
  l.emplace_back("container", "shuttle");
  l.emplace_back("instance", absl::StrFormat("10.244.1.%d:8080",
                                             static_cast<int>(e % 250)));
  l.emplace_back("namespace", "starform-system");
  l.emplace_back(
      "pod", absl::StrCat("shuttle-", Hex(e / 200, 10, 17), "-", Id(e, 5, 18)));
  if (v < 6) {
    l.emplace_back("__name__",
                   "starform_informer_last_event_timestamp_seconds");
    l.emplace_back("resource", kResources[v]);
    s.counter = false;
    s.base = 1.7e9;
    s.step = 15;
  } else if (v < 12) {
    l.emplace_back("__name__", "shuttle_reconcile_total");
    l.emplace_back("controller", kResources[v - 6]);
    l.emplace_back("result", "success");
    s.counter = true;
    s.base = 1e5 * Unit(r);
    s.step = 12;
  } else {
    // Billing meters: one per tenant service and meter kind.
    static constexpr const char* kMeters[] = {"cpu_seconds", "memory_bytes",
                                              "egress_bytes"};
    Tenant t = TenantOf((e * 3 + (v - 12) / 3) * 3);
    l.emplace_back("__name__", "shuttle_billing_meter_events_total");
    l.emplace_back("meter", kMeters[(v - 12) % 3]);
    l.emplace_back("project_id", t.project_id);
    l.emplace_back("service_id", t.service_id);
    l.emplace_back("workspace_id", t.workspace_id);
    s.counter = true;
    s.base = 5e4 * Unit(r);
    s.step = 4;
  }
}

// Shares out of 100 slots: customer 70 (cAdvisor and per-route Envoy are the
// bulk, per the Starform capacity notes), platform 30.
constexpr Family kFamilies[] = {
    {"cadvisor", 36, 12, FillCadvisor},
    {"envoy", 24, 30, FillEnvoy},
    {"kubelet", 10, 4, FillKubelet},
    {"kube-state-metrics", 17, 9, FillKsm},
    {"node-exporter", 7, 80, FillNodeExporter},
    {"envoy-self", 3, 9, FillEnvoySelf},
    {"shuttle", 3, 21, FillShuttle},
};

struct Slot {
  uint8_t family;
  uint8_t rank;  // index among this family's slots
};

const std::vector<Slot>& Slots() {
  // Interleave families over the 100 slots so that every request mixes them.
  static const std::vector<Slot> slots = [] {
    std::vector<Slot> out;
    int taken[std::size(kFamilies)] = {};
    for (int i = 0; i < 100; ++i) {
      // Pick the family furthest behind its share at this point.
      int best = 0;
      double best_deficit = -1e9;
      for (size_t f = 0; f < std::size(kFamilies); ++f) {
        double deficit = kFamilies[f].weight * (i + 1) / 100.0 - taken[f];
        if (deficit > best_deficit) {
          best_deficit = deficit;
          best = static_cast<int>(f);
        }
      }
      out.push_back(
          {static_cast<uint8_t>(best), static_cast<uint8_t>(taken[best]++)});
    }
    return out;
  }();
  return slots;
}

bool IsPlatformJob(std::string_view job) {
  for (auto p : kPlatformJobs)
    if (p == job) return true;
  return false;
}
bool IsTenantLabel(std::string_view name) {
  for (auto p : kTenantLabels)
    if (p == name) return true;
  return false;
}

void AppendTag(std::string* out, int field, int wire_type) {
  out->push_back(static_cast<char>((field << 3) | wire_type));
}
void AppendBytesField(std::string* out, int field, std::string_view v) {
  AppendTag(out, field, 2);
  AppendVarint(out, v.size());
  out->append(v);
}

}  // namespace

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

uint64_t LabelsHash(const Labels& l) {
  StreamHasher h;
  for (const auto& [name, value] : l) {
    h.AddString(name);
    h.AddString(value);
  }
  return h.Finish();
}

StarformGenerator::StarformGenerator(const GenOptions& options)
    : opts_(options) {
  if (opts_.series_per_request == 0) opts_.series_per_request = 1;
  if (opts_.distinct_series == 0) opts_.distinct_series = 1;
  if (opts_.rounds == 0) opts_.rounds = 1;
}

uint64_t StarformGenerator::blocks_per_round() const {
  return (opts_.distinct_series + opts_.series_per_request - 1) /
         opts_.series_per_request;
}

GenSeries StarformGenerator::MakeSeries(uint64_t i) const {
  const Slot& slot = Slots()[i % 100];
  const Family& f = kFamilies[slot.family];
  uint64_t n = (i / 100) * f.weight + slot.rank;  // index within the family
  uint64_t entity = n / f.variants;
  int variant = static_cast<int>(n % f.variants);
  GenSeries s;
  s.labels.reserve(14);
  Common(s.labels, f.job, i);
  f.fill(entity, variant, s.labels, s, Rand(opts_.seed, i, 0));
  std::sort(s.labels.begin(), s.labels.end());
  s.platform = IsPlatformJob(f.job);
  return s;
}

double StarformGenerator::Value(const GenSeries& s, uint64_t round) {
  double v = s.counter ? s.base + s.step * round
                       // Gauges wander around their base.
                       : s.base + s.step * std::sin(0.7 * round);
  return std::abs(v) >= 100 ? std::floor(v) : v;
}

void StarformGenerator::Prepare() {
  prepared_.clear();
  prepared_.resize(opts_.distinct_series);
  // Independent per series: split over the cores.
  const uint64_t n = opts_.distinct_series;
  const uint64_t threads =
      std::clamp<uint64_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<std::thread> pool;
  for (uint64_t t = 0; t < threads; ++t) {
    pool.emplace_back([this, t, threads, n] {
      for (uint64_t i = n * t / threads; i < n * (t + 1) / threads; ++i)
        prepared_[i] = PrepareOne(i);
    });
  }
  for (auto& th : pool) th.join();
}

StarformGenerator::Prepared StarformGenerator::PrepareOne(uint64_t i) const {
  {
    GenSeries s = MakeSeries(i);
    Prepared p;
    p.platform = s.platform;
    p.counter = s.counter;
    p.base = s.base;
    p.step = s.step;
    std::string label_msg;
    for (const auto& [name, value] : s.labels) {
      label_msg.clear();
      AppendBytesField(&label_msg, 1, name);
      AppendBytesField(&label_msg, 2, value);
      AppendBytesField(&p.label_bytes, 1, label_msg);
    }
    p.full_hash = LabelsHash(s.labels);
    if (s.platform) {
      Labels kept;
      for (const auto& kv : s.labels) {
        if (IsTenantLabel(kv.first))
          p.tenant_labelled = true;
        else
          kept.push_back(kv);
      }
      p.platform_hash = LabelsHash(kept);
    }
    return p;
  }
}

Payload StarformGenerator::Build(uint64_t k, bool keep_raw) const {
  const uint64_t blocks = blocks_per_round();
  const uint64_t block = k % blocks, round = k / blocks;
  const uint64_t first = block * opts_.series_per_request;
  const uint64_t last =
      std::min<uint64_t>(first + opts_.series_per_request, prepared_.size());
  const int64_t ts = opts_.start_timestamp_ms +
                     static_cast<int64_t>(round) * opts_.scrape_interval_ms;
  Payload out;
  std::string raw;
  raw.reserve((last - first) * 320);
  std::string sample;
  for (uint64_t i = first; i < last; ++i) {
    const Prepared& p = prepared_[i];
    GenSeries g;
    g.counter = p.counter;
    g.base = p.base;
    g.step = p.step;
    const double value = Value(g, round);
    sample.clear();
    AppendTag(&sample, 1, 1);
    uint64_t bits;
    std::memcpy(&bits, &value, 8);
    for (int b = 0; b < 8; ++b)
      sample.push_back(static_cast<char>(bits >> (8 * b)));
    AppendTag(&sample, 2, 0);
    AppendVarint(&sample, static_cast<uint64_t>(ts));
    const size_t body =
        p.label_bytes.size() + 1 + VarintSize(sample.size()) + sample.size();
    AppendTag(&raw, 1, 2);
    AppendVarint(&raw, body);
    raw.append(p.label_bytes);
    AppendBytesField(&raw, 2, sample);
    ++out.series;
    Expectation& e = p.platform ? out.platform : out.customer;
    e.series += 1;
    e.samples += 1;
    e.hash += SampleHash(p.platform ? p.platform_hash : p.full_hash, ts, value);
    if (p.tenant_labelled) e.tenant_labelled += 1;
    out.all.series += 1;
    out.all.samples += 1;
    out.all.hash += SampleHash(p.full_hash, ts, value);
  }
  out.raw_size = static_cast<uint32_t>(raw.size());
  snappy::Compress(raw.data(), raw.size(), &out.compressed);
  if (keep_raw) out.raw = std::move(raw);
  return out;
}

}  // namespace promrelay::bench
