#!/usr/bin/env python3
"""Side-by-side load benchmark: promrelay vs vmagent doing the Starform split.

In one run, against the same blackhole sink and the same generated payloads,
each proxy gets: a warm-up, closed-loop rounds (maximum accepted samples/s;
CPU seconds per million samples from /proc/<pid>/stat) that alternate
between the two proxies (--repeat, default 3: this machine's speed drifts by
±15 % over minutes, and a slow stretch should hit both, not one; the table
gives medians, and the CPU ratio is the median of the rounds' ratios), and
an open-loop phase at half of promrelay's median maximum (client latency
p50/p99). Both proxies stay up for the whole run. After every
phase the sink must hold exactly what the generator says each destination
should receive (sample counts and an order-independent fingerprint of labels,
timestamps and values), with no malformed request and no tenant label on the
platform destination. Any loss, duplicate, malformed body or request error
fails the run (exit 1); speed never does.

Run through bench/compare.sh; see --help.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLATFORM_JOBS = "shuttle|node-exporter|kube-state-metrics|envoy-self"
TENANT_LABELS = ["project_id", "service_id", "workspace_id"]
PLATFORM_PATH = "/grafana/api/prom/push"
CUSTOMER_PATH = "/victoriametrics/api/v1/write"

PROCS = []  # every process this script started, killed on exit


def log(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.time() + 5
    for p in PROCS:
        if p.poll() is None:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(proc, url, timeout, logfile):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            rc = proc.returncode
            how = (f"was killed by signal {-rc} ({signal.Signals(-rc).name})"
                   if rc < 0 else f"exited with code {rc}")
            raise RuntimeError(f"{how} before becoming ready; log tail:\n"
                               f"{tail(logfile)}")
        try:
            status, _ = http_get(url, timeout=1)
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready at {url} after {timeout}s; log tail:\n"
                       f"{tail(logfile)}")


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields after the command: state is [0], utime [11], stime [12].
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def context_switches(pid):
    """Voluntary + involuntary context switches summed over the threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        total += int(line.split()[1])
        except OSError:
            pass  # the thread ended
    return total


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB
    return 0


class Sink:
    def __init__(self, binary, workdir):
        self.port_file = os.path.join(workdir, "blackhole.port")
        self.logfile = os.path.join(workdir, "blackhole.log")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--port-file", self.port_file,
             "--watch-labels", ",".join(TENANT_LABELS)],
            stdout=open(self.logfile, "w"), stderr=subprocess.STDOUT)
        PROCS.append(self.proc)
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("blackhole did not start:\n" +
                                   tail(self.logfile))
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def stats(self):
        _, body = http_get(self.base + "/stats")
        paths = json.loads(body)["paths"]
        return {p: paths.get(p, {}) for p in (PLATFORM_PATH, CUSTOMER_PATH)}


def delta(after, before):
    out = {}
    for path in after:
        a, b = after[path], before.get(path, {})
        d = {}
        for k in ("requests", "malformed", "series", "samples", "histograms",
                  "watched_label_series"):
            d[k] = a.get(k, 0) - b.get(k, 0)
        d["hash"] = (int(a.get("hash", "0"), 16) -
                     int(b.get("hash", "0"), 16)) % (1 << 64)
        d["last_error"] = a.get("last_error", "")
        out[path] = d
    return out


def expected_by_path(lg):
    e = lg["expected"]
    return {PLATFORM_PATH: e["platform"], CUSTOMER_PATH: e["customer"]}


def wait_drained(sink, before, want, timeout):
    """Waits until the sink holds `want` samples per path; returns the delta
    and the seconds it took after the load stopped."""
    t0 = time.time()
    while True:
        d = delta(sink.stats(), before)
        done = all(d[p]["samples"] >= want[p]["samples"] for p in want)
        if done or time.time() - t0 > timeout:
            # Let a late duplicate show up before judging.
            if done:
                time.sleep(0.3)
                d = delta(sink.stats(), before)
            return d, time.time() - t0
        time.sleep(0.1)


def verify(d, want, lg, label):
    """Returns a list of problems (empty when the phase was exact)."""
    problems = []
    if lg["errors_total"]:
        problems.append(f"{label}: {lg['errors_total']} request errors "
                        f"{lg['errors']} (first: {lg['first_error']})")
    for path, name in ((PLATFORM_PATH, "platform"), (CUSTOMER_PATH, "customer")):
        got, exp = d[path], want[path]
        if got["malformed"]:
            problems.append(f"{label}: {name} sink got {got['malformed']} "
                            f"malformed requests ({got['last_error']})")
        if got["samples"] != exp["samples"]:
            kind = "lost" if got["samples"] < exp["samples"] else "duplicated"
            problems.append(
                f"{label}: {name} sink got {got['samples']} samples, expected "
                f"{exp['samples']} ({kind} {abs(exp['samples'] - got['samples'])})")
        elif got["hash"] != int(exp["hash"], 16):
            problems.append(f"{label}: {name} sink fingerprint mismatch: the "
                            "samples' labels, timestamps or values differ")
    if d[PLATFORM_PATH]["watched_label_series"]:
        problems.append(f"{label}: {d[PLATFORM_PATH]['watched_label_series']} "
                        "platform series still carried a tenant label")
    return problems


def run_loadgen(args, url, extra, outfile):
    cmd = [args.loadgen, "--url", url, "--series", str(args.series),
           "--rounds", str(args.rounds), "--start-ts", str(args.start_ts),
           "-q", "--out", outfile] + extra
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=args.duration * 4 + 300)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr}")
    with open(outfile) as f:
        return json.load(f)


def storage_yaml(args, workdir, name):
    """The `storage` block of a destination for --storage, or ""."""
    if args.storage == "memory":
        return ""
    root = args.storage_root or os.path.join(workdir, "queues")
    return ("    storage:\n"
            f"      path: {os.path.join(root, name)}\n"
            f"      fsync: {args.storage}\n")


def write_configs(workdir, sink, port, args):
    rules_platform = (
        f"- source_labels: [job]\n  regex: {PLATFORM_JOBS}\n  action: keep\n"
        f"- regex: {'|'.join(TENANT_LABELS)}\n  action: labeldrop\n")
    rules_customer = (
        f"- source_labels: [job]\n  regex: {PLATFORM_JOBS}\n  action: drop\n")
    p1 = os.path.join(workdir, "vmagent-platform.yml")
    p2 = os.path.join(workdir, "vmagent-customer.yml")
    with open(p1, "w") as f:
        f.write(rules_platform)
    with open(p2, "w") as f:
        f.write(rules_customer)
    indent = lambda s: "".join("      " + l + "\n" for l in s.splitlines())
    # vmagent flushes every second (-remoteWrite.flushInterval): the same.
    queue_config = "batch_send_deadline: 1s"
    if args.max_samples_per_send:
        queue_config += f", max_samples_per_send: {args.max_samples_per_send}"
    cfg = os.path.join(workdir, "promrelay.yml")
    with open(cfg, "w") as f:
        f.write(
            "# Generated by bench/compare.py: the Starform split, "
            f"{'memory queues' if args.storage == 'memory' else 'disk queues, fsync: ' + args.storage}.\n"
            "server:\n"
            f"  listen_address: 127.0.0.1:{port}\n"
            "remote_write:\n"
            "  - name: grafana-cloud\n"
            f"    url: {sink.url(PLATFORM_PATH)}\n"
            "    write_relabel_configs:\n" + indent(rules_platform) +
            f"    forbidden_labels: [{', '.join(TENANT_LABELS)}]\n"
            f"    queue_config: {{{queue_config}}}\n" +
            storage_yaml(args, workdir, "grafana-cloud") +
            "  - name: victoriametrics\n"
            f"    url: {sink.url(CUSTOMER_PATH)}\n"
            "    write_relabel_configs:\n" + indent(rules_customer) +
            f"    queue_config: {{{queue_config}}}\n" +
            storage_yaml(args, workdir, "victoriametrics"))
    return cfg, p1, p2


def promrelay_usable(args, cfg):
    """(ok, reason): can `promrelay --config` run here?"""
    if not args.promrelay or not os.path.exists(args.promrelay):
        return False, f"binary not built ({args.promrelay or 'not found'})"
    try:
        r = subprocess.run([args.promrelay, "check-config", "--config", cfg],
                           capture_output=True, text=True, timeout=30)
    except OSError as e:
        return False, f"cannot run: {e}"
    if r.returncode != 0:
        return False, ("check-config rejected the bench config: " +
                       (r.stdout + r.stderr).strip()[:500])
    return True, ""


class Proxy:
    """One proxy under test: started once, then measured phase by phase so
    that the two proxies' closed-loop rounds can alternate."""

    def __init__(self, args, name, cmd, ready_url, ingest_url, workdir):
        self.args, self.name, self.cmd = args, name, cmd
        self.ready_url, self.ingest_url, self.workdir = (ready_url, ingest_url,
                                                         workdir)
        self.logfile = os.path.join(workdir, f"{name}.log")
        self.proc = None
        self.failed = False
        self.res = {"name": name, "problems": [], "max_rounds": []}

    def start(self):
        """True when the proxy is up; else the reason is in self.res."""
        log(f"{self.name}: starting: {' '.join(self.cmd)}")
        try:
            self.proc = subprocess.Popen(
                self.cmd, stdout=open(self.logfile, "w"),
                stderr=subprocess.STDOUT, cwd=self.workdir)
        except OSError as e:
            self.res["problems"].append(f"{self.name}: cannot start: {e}")
            self.failed = True
            return False
        PROCS.append(self.proc)
        try:
            wait_ready(self.proc, self.ready_url, 30, self.logfile)
        except RuntimeError as e:
            self.failed = True
            # The CLI exists before the server does: say so, don't call it
            # a delivery failure.
            if (self.proc.poll() is not None and
                    "not built yet" in tail(self.logfile)):
                self.res["unavailable"] = ("`promrelay --config` says: " +
                                           tail(self.logfile, 3).strip())
                log(f"{self.name}: NOT MEASURED: {self.res['unavailable']}")
            else:
                self.res["problems"].append(f"{self.name}: {e}")
                log(f"{self.name}: FAILED: {e}")
            return False
        self.res["idle_rss_bytes"] = proc_status(self.proc.pid, "VmRSS")
        return True

    def run(self, sink, label, extra, profile=False):
        """Measures one phase; on an error the proxy is out of the run."""
        if self.failed:
            return None
        try:
            return self._phase(sink, label, extra, profile)
        except Exception as e:  # report, keep going with the other proxy
            self.res["problems"].append(f"{self.name}: {e}")
            log(f"{self.name}: FAILED: {e}")
            self.failed = True
            return None

    def _phase(self, sink, label, extra, profile):
        args, name, pid = self.args, self.name, self.proc.pid
        before = sink.stats()
        perf = None
        if profile and args.perf and shutil.which("perf"):
            # Profile the first closed-loop round: perf report -i <file>.
            perf = subprocess.Popen(
                ["perf", "record", "-F", "499", "--call-graph",
                 args.perf_call_graph, "-p", str(pid), "-o",
                 os.path.join(args.out, f"{name}.perf.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            PROCS.append(perf)
        cpu0 = cpu_seconds(pid)
        faults0, switches0 = minor_faults(pid), context_switches(pid)
        sink_cpu0 = cpu_seconds(sink.proc.pid)
        lg = run_loadgen(args, self.ingest_url, extra,
                         os.path.join(self.workdir, f"{name}-{label}.json"))
        want = expected_by_path(lg)
        d, drain_s = wait_drained(sink, before, want, args.drain_timeout)
        cpu1 = cpu_seconds(pid)
        faults = minor_faults(pid) - faults0
        switches = context_switches(pid) - switches0
        sink_cpu = cpu_seconds(sink.proc.pid) - sink_cpu0
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            try:
                perf.wait(30)
            except subprocess.TimeoutExpired:
                perf.kill()
        problems = verify(d, want, lg, f"{name}/{label}")
        self.res["problems"] += problems
        samples = lg["samples_sent"]
        out = {
            "loadgen": lg,
            "sink": {("platform" if p == PLATFORM_PATH else "customer"):
                     {k: (f"{v:016x}" if k == "hash" else v)
                      for k, v in d[p].items()} for p in d},
            "cpu_s": cpu1 - cpu0,
            "cpu_s_per_million": ((cpu1 - cpu0) / samples * 1e6
                                  if samples else None),
            "drain_s": drain_s,
            "minor_faults": faults,
            "context_switches": switches,
            # The sink shares the cores; its cost per delivered sample.
            "sink_cpu_s": sink_cpu,
            "delivered_samples_per_s":
                samples / (lg["elapsed_s"] + drain_s) if samples else 0,
            "rss_bytes": proc_status(pid, "VmRSS"),
            "verified": not problems,
        }
        log(f"{name}/{label}: {lg['samples_per_s']:.0f} samples/s accepted, "
            f"cpu {out['cpu_s']:.2f}s "
            f"({out['cpu_s_per_million'] or 0:.3f} s/M), p50 "
            f"{lg['latency_ms']['p50']:.2f} ms, p99 "
            f"{lg['latency_ms']['p99']:.2f} ms, drained in {drain_s:.1f}s, "
            f"{faults / max(1, lg['requests']):.1f} page faults and "
            f"{switches / max(1, lg['requests']):.1f} context switches "
            "per request, "
            f"{'OK' if not problems else 'FAILED: ' + '; '.join(problems)}")
        return out

    def warmup(self, sink):
        self.res["warmup"] = self.run(sink, "warmup", [
            "-c", str(self.args.concurrency), "-d", f"{self.args.warmup}s"])

    def closed_loop_round(self, sink, index):
        out = self.run(sink, f"max#{index + 1}", [
            "-c", str(self.args.concurrency), "-d", f"{self.args.duration}s"],
            profile=index == 0)
        if out is not None:
            self.res["max_rounds"].append(out)
            # "max" is the round with the median CPU per sample (the lower
            # middle one for an even count): the table's closed-loop
            # figures all come from that one round.
            rounds = sorted(self.res["max_rounds"],
                            key=lambda r: r["cpu_s_per_million"] or 0)
            self.res["max"] = rounds[(len(rounds) - 1) // 2]
        return out

    def rated(self, sink, rate_rps):
        self.res["rate_rps"] = rate_rps
        self.res["rated"] = self.run(sink, "rated", [
            "-c", str(self.args.rate_concurrency), "-rate",
            f"{rate_rps:.3f}", "-d", f"{self.args.duration}s"])

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.res["peak_rss_bytes"] = proc_status(self.proc.pid, "VmHWM")
            self.res["cpu_s_total"] = cpu_seconds(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.args.out:
            shutil.copy(self.logfile, os.path.join(self.args.out,
                                                   f"{self.name}.log"))


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return (values[mid] if len(values) % 2 else
            (values[mid - 1] + values[mid]) / 2)


def measure_all(args, proxies, sink):
    """Warm-up each proxy, then alternate their closed-loop rounds (the
    machine's speed drifts: a noisy minute then hits both, not one), then
    an open-loop phase each at half of promrelay's median maximum."""
    live = [p for p in proxies if p.start()]
    for p in live:
        p.warmup(sink)
    for i in range(args.repeat):
        for p in live:
            p.closed_loop_round(sink, i)
    rates = {p.name: median([r["loadgen"]["requests_per_s"]
                             for r in p.res["max_rounds"]]) for p in live}
    rate_rps = rates.get("promrelay") or next(
        (r for r in rates.values() if r), None)
    if rate_rps:
        for p in live:
            p.rated(sink, rate_rps / 2)
    for p in proxies:
        p.stop()


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def ratio(a, b, spec=".2f"):
    if a is None or b is None or b == 0:
        return "n/a"
    return format(a / b, ".3g") + "×"


def round_ratios(pr, vm):
    """promrelay/vmagent CPU per sample of each pair of adjacent rounds."""
    a = [r.get("cpu_s_per_million") for r in (pr or {}).get("max_rounds", [])]
    b = [r.get("cpu_s_per_million") for r in (vm or {}).get("max_rounds", [])]
    return [x / y for x, y in zip(a, b) if x is not None and y]


def cpu_ratio(pr, vm):
    """The median of the per-round ratios: each pair ran a minute apart at
    most, so a slow stretch of the machine cancels out of it."""
    m = median(round_ratios(pr, vm))
    return "n/a" if m is None else format(m, ".3g") + "× (median of rounds)"


def cpu_ratios(pr, vm):
    return " / ".join(format(x, ".3g") + "×" for x in round_ratios(pr, vm)) \
        or "n/a"


def table(results, args):
    pr, vm = results.get("promrelay"), results.get("vmagent")

    def get(r, *path):
        try:
            for p in path:
                r = r[p]
            return r
        except (KeyError, TypeError):
            return None

    rate_samples = None
    for r in (pr, vm):
        if get(r, "rate_rps") is not None:
            rate_samples = r["rate_rps"] * args.batch
            break
    rows = [
        ("accepted samples/s (closed loop, c=%d)" % args.concurrency,
         lambda r: get(r, "max", "loadgen", "samples_per_s"), ",.0f"),
        ("delivered samples/s (incl. drain)",
         lambda r: get(r, "max", "delivered_samples_per_s"), ",.0f"),
        ("CPU s per 1M samples (= µs/sample), median round of %d" %
         args.repeat,
         lambda r: get(r, "max", "cpu_s_per_million"), ".3f"),
        ("peak RSS MiB", lambda r: get(r, "peak_rss_bytes") / 2**20
         if get(r, "peak_rss_bytes") else None, ".1f"),
        ("p50 latency ms @ %s samples/s" % fmt(rate_samples, ",.0f"),
         lambda r: get(r, "rated", "loadgen", "latency_ms", "p50"), ".2f"),
        ("p99 latency ms @ same rate",
         lambda r: get(r, "rated", "loadgen", "latency_ms", "p99"), ".2f"),
        ("p99 latency ms (closed loop)",
         lambda r: get(r, "max", "loadgen", "latency_ms", "p99"), ".2f"),
    ]
    lines = ["| metric | promrelay | vmagent | promrelay/vmagent |",
             "|---|---:|---:|---:|"]
    for title, f, spec in rows:
        a = f(pr) if pr else None
        b = f(vm) if vm else None
        cpu_row = title.startswith("CPU s per 1M") and args.repeat > 1
        lines.append(f"| {title} | {fmt(a, spec)} | {fmt(b, spec)} | "
                     f"{cpu_ratio(pr, vm) if cpu_row else ratio(a, b)} |")
        if cpu_row:
            each = lambda r: " / ".join(
                fmt(x.get("cpu_s_per_million"), ".3f")
                for x in (r or {}).get("max_rounds", [])) or "n/a"
            lines.append(f"| … each round, in the order run | {each(pr)} | "
                         f"{each(vm)} | {cpu_ratios(pr, vm)} |")
    for name, r in (("promrelay", pr), ("vmagent", vm)):
        if r is None:
            continue
        status = "exact" if not r["problems"] else "FAILED"
        lines.append(f"| {name} delivery check | {status} |  |  |"
                     if name == "promrelay" else
                     f"| {name} delivery check |  | {status} |  |")
    return "\n".join(lines)


def find_tool(build_dir, name):
    for d in [os.path.join(build_dir, "bench")] + sorted(
            os.path.join(ROOT, x, "bench") for x in os.listdir(ROOT)
            # Never sanitizer builds: their tools would skew the figures.
            if x.startswith("build") and "asan" not in x and "san" not in x):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return os.path.abspath(p)
    return None


def main():
    ap = argparse.ArgumentParser(
        description="promrelay vs vmagent on the Starform split "
                    "(bench/compare.sh)")
    ap.add_argument("--duration", type=float, default=20,
                    help="seconds per measured phase (default 20)")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--series", type=int, default=100000,
                    help="distinct series (default 100000)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2000,
                    help="series per request (loadgen default)")
    ap.add_argument("--concurrency", "-c", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3,
                    help="closed-loop rounds per proxy, alternating between "
                    "the proxies; the table shows the median (default 3, "
                    "--quick: 1)")
    ap.add_argument("--max-samples-per-send", type=int,
                    help="samples per outgoing request for both proxies "
                    "(promrelay queue_config.max_samples_per_send, vmagent "
                    "-remoteWrite.maxRowsPerBlock); default: each proxy's "
                    "own default (2000 and 10000)")
    ap.add_argument("--rate-concurrency", type=int, default=16)
    ap.add_argument("--quick", action="store_true",
                    help="CI mode: 20k series, 5 s phases, under 60 s total")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--promrelay", help="promrelay binary "
                    "(default <build-dir>/promrelay)")
    ap.add_argument("--vmagent", default=shutil.which("vmagent"))
    ap.add_argument("--only", choices=["promrelay", "vmagent"])
    ap.add_argument("--require-promrelay", action="store_true",
                    help="exit 3 when promrelay cannot be measured (CI)")
    ap.add_argument("--perf", action="store_true",
                    help="perf record each proxy during the closed-loop phase "
                    "(<out>/<name>.perf.data)")
    ap.add_argument("--perf-call-graph", default="fp",
                    help="perf --call-graph mode: fp (default; needs frame "
                    "pointers) or dwarf (deep stacks, large files)")
    ap.add_argument("--storage", default="memory",
                    choices=["memory", "always", "interval", "never"],
                    help="promrelay's queues: memory (default) or disk queues "
                    "with this storage.fsync policy (vmagent is unaffected)")
    ap.add_argument("--storage-dir",
                    help="where the disk queues go (default: a directory in "
                    "the temporary work directory, removed afterwards)")
    ap.add_argument("--drain-timeout", type=float, default=60)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.max_samples_per_send is not None and args.max_samples_per_send < 1:
        ap.error("--max-samples-per-send must be at least 1")
    if args.quick:
        args.duration = min(args.duration, 5)
        args.warmup = 1
        args.series = min(args.series, 20000)
        args.rounds = 2
        args.repeat = 1
        args.drain_timeout = min(args.drain_timeout, 20)
    args.build_dir = os.path.abspath(args.build_dir)
    if args.promrelay is None:
        args.promrelay = os.path.join(args.build_dir, "promrelay")
    args.promrelay = os.path.abspath(args.promrelay)
    args.loadgen = find_tool(args.build_dir, "promrelay-loadgen")
    blackhole = find_tool(args.build_dir, "promrelay-blackhole")
    if not args.loadgen or not blackhole:
        log("promrelay-loadgen / promrelay-blackhole not built: run "
            "scripts/build.sh promrelay-loadgen promrelay-blackhole")
        return 2
    os.makedirs(args.out, exist_ok=True)
    interval = 15000
    now_ms = int(time.time() * 1000)
    args.start_ts = now_ms // interval * interval - args.rounds * interval

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workdir = tempfile.mkdtemp(prefix="promrelay-bench-")
    # A fresh directory even under --storage-dir: a queue left by an earlier
    # run would be replayed and fail the delivery check.
    args.storage_root = (tempfile.mkdtemp(prefix="promrelay-bench-queues-",
                                          dir=args.storage_dir)
                         if args.storage_dir else None)
    started = time.time()
    load_before = loadavg()
    results = {}
    notes = []
    try:
        sink = Sink(blackhole, workdir)
        log(f"blackhole on {sink.base}; {args.series} series, "
            f"{args.duration:g}s phases, loadgen {args.loadgen}")
        pr_port = free_port()
        cfg, rules_platform, rules_customer = write_configs(workdir, sink,
                                                            pr_port, args)
        shutil.copy(cfg, os.path.join(args.out, "promrelay-bench.yml"))
        proxies = []
        if args.only in (None, "promrelay"):
            ok, why = promrelay_usable(args, cfg)
            if ok:
                proxies.append(Proxy(
                    args, "promrelay", [args.promrelay, "--config", cfg],
                    f"http://127.0.0.1:{pr_port}/-/ready",
                    f"http://127.0.0.1:{pr_port}/api/v1/write", workdir))
            else:
                notes.append(f"promrelay not measured: {why}")
                log(f"promrelay NOT MEASURED: {why}")
        if args.only in (None, "vmagent"):
            if not args.vmagent:
                notes.append("vmagent not found (Debian package victoria-metrics)")
                log(notes[-1])
            else:
                vm_port = free_port()
                vm_cmd = [
                    args.vmagent, f"-httpListenAddr=127.0.0.1:{vm_port}",
                    f"-remoteWrite.url={sink.url(PLATFORM_PATH)}",
                    f"-remoteWrite.url={sink.url(CUSTOMER_PATH)}",
                    f"-remoteWrite.urlRelabelConfig={rules_platform}",
                    f"-remoteWrite.urlRelabelConfig={rules_customer}",
                    f"-remoteWrite.tmpDataPath={workdir}/vmagent-data",
                    "-remoteWrite.maxDiskUsagePerURL=1GB",
                    "-loggerLevel=WARN"]
                if args.max_samples_per_send:
                    vm_cmd.append("-remoteWrite.maxRowsPerBlock="
                                  f"{args.max_samples_per_send}")
                proxies.append(Proxy(
                    args, "vmagent", vm_cmd,
                    f"http://127.0.0.1:{vm_port}/health",
                    f"http://127.0.0.1:{vm_port}/api/v1/write", workdir))
        measure_all(args, proxies, sink)
        for p in proxies:
            if "unavailable" in p.res:
                notes.append(f"{p.name} not measured: {p.res['unavailable']}")
            else:
                results[p.name] = p.res
    finally:
        kill_all()
        if os.environ.get("PROMRELAY_BENCH_KEEP_TMP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
            if args.storage_root:
                shutil.rmtree(args.storage_root, ignore_errors=True)

    problems = [p for r in results.values() for p in r["problems"]]
    promrelay_missing = args.only != "vmagent" and "promrelay" not in results
    md = table(results, args)
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "git": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short",
                               "HEAD"], capture_output=True,
                              text=True).stdout.strip(),
        "options": {k: v for k, v in vars(args).items()},
        "elapsed_s": time.time() - started,
        # The machine is shared: throughput and latency move with its load;
        # CPU per sample (the proxy's own /proc counters) much less.
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "results": results,
        "notes": notes,
        "problems": problems,
        "table_markdown": md,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    report = [
        f"### promrelay vs vmagent — {args.series} distinct series, "
        f"{args.duration:g} s phases, {args.repeat} closed-loop "
        f"round{'' if args.repeat == 1 else 's'} each (alternating), "
        f"samples per outgoing request: "
        f"{args.max_samples_per_send or 'each its default (2000 / 10000)'}, "
        f"promrelay queues: "
        f"{'memory' if args.storage == 'memory' else 'disk, fsync: ' + args.storage}, "
        f"{summary['date']} ({summary['git']}), "
        f"load avg {load_before} -> {summary['loadavg_after']}", "", md, ""]
    report += [f"NOTE: {n}" for n in notes]
    if problems:
        report.append("DELIVERY CHECK FAILED:")
        report += [f"  - {p}" for p in problems]
    else:
        report.append("Delivery check: every sample arrived exactly once at "
                      "the right destination, no malformed request, no "
                      "tenant label on the platform destination.")
    text = "\n".join(report) + "\n"
    # table.md: for CI logs (ctest hides a passing test's output).
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    print()
    print(text, end="")
    print(f"(results: {os.path.join(args.out, 'results.json')}, "
          f"{summary['elapsed_s']:.0f} s)")
    if problems:
        return 1
    if promrelay_missing and args.require_promrelay:
        print("promrelay could not be measured (--require-promrelay): exit 3")
        return 3
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        kill_all()
