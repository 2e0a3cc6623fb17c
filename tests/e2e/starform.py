"""Starform-shaped series for the end-to-end tests and the demo.

Starform (see /work/shared/seeds) runs agents in each customer Kubernetes
cluster. Everything they scrape reaches promrelay, which must send

  * platform series (job in PLATFORM_JOBS) to Grafana Cloud without the tenant
    identifiers in TENANT_LABELS, and
  * customer series (every other job), labels intact, to VictoriaMetrics.

The generator is deterministic so tests can state exact expectations. Every
platform series stays unique after its tenant labels are dropped (otherwise
two series would collapse into one at the platform sink and the counts there
would depend on the sink's duplicate handling, not on promrelay).
"""

import random

PLATFORM_JOBS = ("shuttle", "node-exporter", "kube-state-metrics", "envoy-self")
PLATFORM_JOB_REGEX = "|".join(PLATFORM_JOBS)
TENANT_LABELS = ("project_id", "service_id", "workspace_id")
CUSTOMER_JOBS = ("cadvisor", "envoy", "customer-app")
ALL_JOBS = PLATFORM_JOBS + CUSTOMER_JOBS


class Tenant:
    def __init__(self, rng, index):
        def ident(prefix):
            return "%s-%08x" % (prefix, rng.getrandbits(32))

        self.workspace_id = ident("ws")
        self.project_id = ident("prj")
        # Services of a project; each runs pods_per_service pods.
        self.services = [ident("svc") for _ in range(2)]
        # Namespaces are opaque too: a namespace named after the project would
        # leak the tenant through a label the GDPR rule does not drop.
        self.namespace = "ns-%02d-%04x" % (index, rng.getrandbits(16))


def generate(tenants=3, pods_per_service=2, nodes=2, seed=20240501):
    """Returns a list of label dicts (with __name__ and job), one per series."""
    rng = random.Random(seed)
    ts = [Tenant(rng, i) for i in range(tenants)]
    series = []

    def add(job, name, **labels):
        d = {"__name__": name, "job": job}
        d.update({k: str(v) for k, v in labels.items()})
        series.append(d)

    node_names = ["node-%d" % i for i in range(nodes)]
    pods = []  # (tenant, service, pod, node)
    for t in ts:
        for s in t.services:
            for p in range(pods_per_service):
                # Opaque pod names: a name built from the service ID would
                # carry the tenant past the labeldrop in another label.
                pod = "pod-%06x-%d" % (rng.getrandbits(24), p)
                pods.append((t, s, pod, node_names[len(pods) % nodes]))

    def tenant(t, s):
        return {"project_id": t.project_id, "service_id": s,
                "workspace_id": t.workspace_id}

    # --- platform: shuttle (Starform's in-cluster controller)
    for resource in ("pods", "services", "httproutes"):
        add("shuttle", "starform_informer_last_event_timestamp_seconds",
            resource=resource, instance="shuttle-0:9090")
    for t, s, pod, node in pods:
        # The billing meter is per pod; Shuttle attaches the tenant.
        add("shuttle", "starform_billing_pod_seconds_total", namespace=t.namespace,
            pod=pod, instance="shuttle-0:9090", **tenant(t, s))
    add("shuttle", "shuttle_reconcile_errors_total", controller="route",
        instance="shuttle-0:9090")
    # --- platform: node-exporter
    for node in node_names:
        for cpu in range(2):
            for mode in ("idle", "system", "user"):
                add("node-exporter", "node_cpu_seconds_total", instance=node + ":9100",
                    cpu=cpu, mode=mode)
        add("node-exporter", "node_memory_MemAvailable_bytes", instance=node + ":9100")
    # --- platform: kube-state-metrics (tenant labels copied from pod labels)
    for t, s, pod, node in pods:
        add("kube-state-metrics", "kube_pod_info", namespace=t.namespace, pod=pod,
            node=node, instance="ksm-0:8080", **tenant(t, s))
        add("kube-state-metrics", "kube_pod_container_status_restarts_total",
            namespace=t.namespace, pod=pod, container="app", instance="ksm-0:8080")
    # --- platform: the Envoy gateway's own health
    for replica in range(2):
        inst = "envoy-gw-%d:19001" % replica
        add("envoy-self", "envoy_server_live", instance=inst)
        add("envoy-self", "envoy_server_memory_allocated", instance=inst)

    # --- customer: cAdvisor container metrics with tenant identity
    for t, s, pod, node in pods:
        for name in ("container_cpu_usage_seconds_total",
                     "container_memory_working_set_bytes"):
            add("cadvisor", name, namespace=t.namespace, pod=pod, container="app",
                node=node, instance=node + ":10250", **tenant(t, s))
    # --- customer: per-route Envoy metrics
    for t in ts:
        for s in t.services:
            route = "httproute/%s/%s/rule/0" % (t.namespace, s)
            for code_class in ("2", "5"):
                add("envoy", "envoy_cluster_upstream_rq_total",
                    envoy_cluster_name=route, envoy_response_code_class=code_class,
                    instance="envoy-gw-0:19001", **tenant(t, s))
            for le in ("0.05", "0.25", "1", "+Inf"):
                add("envoy", "envoy_cluster_upstream_rq_time_bucket",
                    envoy_cluster_name=route, le=le, instance="envoy-gw-0:19001",
                    **tenant(t, s))
    # --- customer: the customers' own application metrics
    for t, s, pod, node in pods:
        for code in ("200", "500"):
            add("customer-app", "http_requests_total", namespace=t.namespace, pod=pod,
                code=code, path="/api", instance=pod + ":8080", **tenant(t, s))
    return series


def is_platform(labels):
    return labels.get("job") in PLATFORM_JOBS


def platform_view(labels):
    """What the platform sink must hold for a platform series."""
    return {k: v for k, v in labels.items() if k not in TENANT_LABELS}


def split(series):
    """(platform series as the platform sink must see them, customer series)."""
    platform = [platform_view(s) for s in series if is_platform(s)]
    customer = [dict(s) for s in series if not is_platform(s)]
    return platform, customer


def leaked_ids(labels, ids):
    """Tenant identifiers found in any label value, also as a substring."""
    return sorted({i for v in labels.values() for i in ids if i in v})


def tenant_values(series):
    """Every tenant identifier value in the data (for leak scans)."""
    out = set()
    for s in series:
        for k in TENANT_LABELS:
            if k in s:
                out.add(s[k])
    return out


def value(series_index, round_index):
    """A deterministic value that survives text and float round trips."""
    return float(series_index * 1000 + round_index * 10) + 0.5


def _escape(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def series_key(labels):
    return frozenset(labels.items())


def format_series(labels):
    name = labels.get("__name__", "")
    rest = ",".join('%s="%s"' % (k, _escape(v))
                    for k, v in sorted(labels.items()) if k != "__name__")
    return "%s{%s}" % (name, rest)


def exposition(series, round_index, timestamp_ms=None, drop_job=False):
    """Prometheus text exposition of every series at one round.

    drop_job=True leaves the job label out (a scraper adds its own)."""
    lines = []
    for i, labels in enumerate(series):
        ls = {k: v for k, v in labels.items() if not (drop_job and k == "job")}
        line = "%s %r" % (format_series(ls), value(i, round_index))
        if timestamp_ms is not None:
            line += " %d" % timestamp_ms
        lines.append(line)
    return "\n".join(lines) + "\n"


def expected(series, round_timestamps, destination):
    """{frozenset(labels): [(ts_ms, value)]} a sink must hold after the rounds
    (round index -> timestamp) were sent. destination: "platform" or "customer"."""
    out = {}
    for i, labels in enumerate(series):
        if is_platform(labels) != (destination == "platform"):
            continue
        view = platform_view(labels) if destination == "platform" else labels
        key = series_key(view)
        if key in out:
            raise ValueError("two series collapse into %s" % format_series(view))
        out[key] = sorted((ts, value(i, r)) for r, ts in round_timestamps.items())
    return out


def rw_series(series, round_index, timestamp_ms):
    """One round as remote-write (labels, samples) pairs."""
    return [(labels, [(timestamp_ms, value(i, round_index))])
            for i, labels in enumerate(series)]


class Exporter:
    """Live /metrics/<job> pages for agents to scrape (the demo, test (b)):
    counters grow with time, gauges move, the job label is left to the
    scraper as with real exporters."""

    def __init__(self, series):
        import time as _time
        self._time = _time
        self.start = _time.time()
        self.by_job = {}
        for i, labels in enumerate(series):
            self.by_job.setdefault(labels["job"], []).append((i, labels))

    def _value(self, i, labels, t):
        name = labels["__name__"]
        rate = 1 + (i % 7)
        if name.endswith("_total") or name.endswith("_bucket"):
            return round(1000 * i + rate * t, 3)
        if name.endswith("_timestamp_seconds"):
            return round(self.start + t - (i % 5), 3)
        if name in ("envoy_server_live", "kube_pod_info"):
            return 1
        return 1e6 * (1 + i % 13) + 1000 * ((int(t) + i) % 17)

    def render(self, job):
        if job not in self.by_job:
            return None
        t = self._time.time() - self.start
        lines = []
        for i, labels in self.by_job[job]:
            ls = {k: v for k, v in labels.items() if k != "job"}
            lines.append("%s %r" % (format_series(ls), self._value(i, labels, t)))
        return "\n".join(lines) + "\n"
