#!/usr/bin/env python3
"""A simple load loop for issue 4's closing note: throughput and request
latency (p50/p99) of promrelay's disk queue per fsync policy.

    python3 tests/e2e/tools/fsync_load.py [--seconds 15] [--clients 8] [--series 500]

For each policy (always, interval, and memory queue for reference) it starts
VictoriaMetrics and promrelay, runs --clients concurrent pushers (the
harness's Pusher, no pause between requests) for --seconds, and prints
requests/s, samples/s and latency percentiles of acknowledged requests. The
Python clients cost CPU too: on a small machine the numbers are a floor for
promrelay, useful to compare the policies with each other.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def run(policy, args):
    with harness.Env("fsync-" + policy) as env:
        vm = env.start_victoria_metrics()
        dest = harness.destination("victoriametrics", vm.write_url,
                                   queue_config={"max_samples_per_send": 5000})
        if policy != "memory":
            dest["storage"] = {"path": env.path("queue"), "max_bytes": "1GiB",
                               "fsync": policy}
        relay = env.start_promrelay(harness.relay_config([dest]))
        pushers = [harness.Pusher(relay, series=args.series, interval=0,
                                  metric="e2e_load_%d" % i) for i in range(args.clients)]
        t0 = time.monotonic()
        for p in pushers:
            p.start()
        time.sleep(args.seconds)
        for p in pushers:
            p.stop_event.set()
        for p in pushers:
            p.join()
        elapsed = time.monotonic() - t0
        lat = [x for p in pushers for x in p.latencies]
        n_req = len(lat)
        statuses = {}
        for p in pushers:
            for k, v in p.status_summary().items():
                statuses[k] = statuses.get(k, 0) + v
        return {"policy": policy, "req_s": n_req / elapsed,
                "samples_s": n_req * args.series / elapsed,
                "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
                "statuses": statuses}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--series", type=int, default=500, help="samples per request")
    ap.add_argument("--policies", default="always,interval,memory")
    args = ap.parse_args()
    rows = [run(p, args) for p in args.policies.split(",")]
    print("%d clients x %d samples/request, %.0fs each" % (args.clients, args.series,
                                                          args.seconds))
    print("%-9s %10s %12s %9s %9s  %s" % ("fsync", "requests/s", "samples/s", "p50 ms",
                                         "p99 ms", "statuses"))
    for r in rows:
        print("%-9s %10.0f %12.0f %9.2f %9.2f  %s" % (r["policy"], r["req_s"], r["samples_s"],
                                                     r["p50_ms"], r["p99_ms"], r["statuses"]))


if __name__ == "__main__":
    main()
