#!/usr/bin/env python3
"""promrelay demo (run by scripts/demo.sh): the Starform split, live.

Starts VictoriaMetrics (customer sink), a Prometheus 2.42 behind TLS and
basic auth (stand-in for Grafana Cloud), promrelay with
config/demo/promrelay.yaml, and a real vmagent scraping realistic Starform
exporters (config/demo/vmagent-scrape.yml) and pushing everything to
promrelay. After --duration seconds it prints what arrived where and proves
that no tenant identifier reached the platform sink, then stops everything.
Exit status 0 only if the split is exactly as configured.
"""

import argparse
import os
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import starform  # noqa: E402

CONFIG = os.path.join(harness.SOURCE_DIR, "config", "demo", "promrelay.yaml")
SCRAPE = os.path.join(harness.SOURCE_DIR, "config", "demo", "vmagent-scrape.yml")


def say(msg=""):
    print(msg, flush=True)


def per_job(exported):
    """(series per job, samples per job) of a sink's raw content."""
    series, samples = {}, {}
    for key, values in exported.items():
        job = dict(key).get("job", "")
        series[job] = series.get(job, 0) + 1
        samples[job] = samples.get(job, 0) + len(values)
    return series, samples


def display_path(p):
    rel = os.path.relpath(os.path.abspath(p), harness.SOURCE_DIR)
    return p if rel.startswith("..") else rel


def run(args):
    with harness.Env("demo") as env:
        say("promrelay demo: the Starform platform/customer split with real components")
        say("  working dir %s (removed at the end)" % env.dir)
        vm = env.start_victoria_metrics()
        say("  VictoriaMetrics (customer sink)           %s" % vm.base)
        user = "123456"  # a Grafana Cloud instance ID looks like this
        token = "glc_" + secrets.token_hex(16)
        prom = env.start_prometheus_receiver(name="grafana-cloud-standin", username=user,
                                             password=token)
        say("  Grafana Cloud stand-in (TLS, basic auth)  %s" % prom.base)

        # The files the demo config points at, under its working dir.
        env.write("secrets/grafana-cloud-token", token + "\n", mode=0o600)
        os.makedirs(env.path("tls"), exist_ok=True)
        for f in ("ca.crt",):
            with open(prom.tls["ca"], "rb") as src, open(env.path("tls", f), "wb") as dst:
                dst.write(src.read())
        port = harness.free_port()
        relay = harness.Promrelay(env, "promrelay", None, binary=args.binary, port=port,
                                  config_path=args.config, extra_env={
                                      "PROMRELAY_DEMO_LISTEN": "127.0.0.1:%d" % port,
                                      "PROMRELAY_DEMO_PLATFORM_URL": prom.write_url,
                                      "PROMRELAY_DEMO_PLATFORM_USER": user,
                                      "PROMRELAY_DEMO_VM_URL": vm.write_url,
                                      "PROMRELAY_DEMO_DIR": env.dir,
                                  }).start()
        say("  promrelay                                 %s  (%s)" % (
            relay.base, display_path(args.config)))

        series = starform.generate(tenants=args.tenants, pods_per_service=2, nodes=3)
        exporter = starform.Exporter(series)
        server = env.start_metrics_server(exporter.render)
        agent = env.start_vmagent(relay.write_url, scrape_config_file=SCRAPE,
                                  extra_env={"PROMRELAY_DEMO_TARGET": server.address})
        say("  vmagent scraping %d Starform jobs (%d series, %d tenants) every 2s -> promrelay"
            % (len(starform.ALL_JOBS), len(series), args.tenants))
        say()

        t_end = time.time() + args.duration
        while time.time() < t_end:
            time.sleep(min(5, max(0.1, t_end - time.time())))
            m = relay.metrics()
            say("  [%3.0fs] promrelay received %6d samples | sent: grafana-cloud %6d, "
                "victoriametrics %6d | dropped %d" % (
                    args.duration - max(0, t_end - time.time()),
                    m.sum("promrelay_received_samples_total"),
                    m.sum("promrelay_sent_samples_total", destination="grafana-cloud"),
                    m.sum("promrelay_sent_samples_total", destination="victoriametrics"),
                    m.sum("promrelay_dropped_samples_total")))
        agent.stop()  # no more input; let promrelay's queues drain
        harness.wait_for(lambda: agent_drained(relay), 20, what="promrelay queues to drain")
        return report(vm, prom, relay, series)


def agent_drained(relay):
    m1 = relay.metrics()
    time.sleep(1.5)
    m2 = relay.metrics()
    sent = lambda m: m.sum("promrelay_sent_samples_total")  # noqa: E731
    return sent(m1) == sent(m2)


def report(vm, prom, relay, series):
    ok = True
    vm_series, vm_samples = per_job(vm.export())
    pc_series, pc_samples = per_job(prom.export(window="1h"))

    say()
    say("What arrived where (series / samples per job and destination)")
    say("  %-20s %-9s %24s %24s" % ("job", "kind", "VictoriaMetrics", "Grafana Cloud"))
    say("  " + "-" * 80)
    for job in starform.ALL_JOBS:
        kind = "platform" if job in starform.PLATFORM_JOBS else "customer"
        cell = lambda s, n: "%5d / %-7d" % (s.get(job, 0), n.get(job, 0))  # noqa: E731
        say("  %-20s %-9s %24s %24s" % (job, kind, cell(vm_series, vm_samples),
                                         cell(pc_series, pc_samples)))
        if kind == "platform" and (vm_series.get(job) or not pc_series.get(job)):
            ok = False
        if kind == "customer" and (pc_series.get(job) or not vm_series.get(job)):
            ok = False
    say()

    say("Tenant identifiers at the Grafana Cloud stand-in (must all be 0)")
    leak = 0
    for label in starform.TENANT_LABELS:
        res = prom.query('count({%s!=""})' % label)
        n = int(float(res[0]["value"][1])) if res else 0
        leak += n
        say('  count({%s!=""})%s = %d' % (label, " " * (14 - len(label)), n))
    ids = starform.tenant_values(series)
    platform_series = prom.series()
    hits = [s for s in platform_series if starform.leaked_ids(s, ids)]
    leak += len(hits)
    say("  series with any of the %d tenant IDs in any label value: %d (of %d scanned)" % (
        len(ids), len(hits), len(platform_series)))
    with_ids = vm.query('count({project_id!=""})')
    say("  for contrast, VictoriaMetrics holds %s customer series with project_id" % (
        with_ids[0]["value"][1] if with_ids else 0))
    if leak:
        ok = False
    example = next((s for s in series if s["__name__"] == "kube_pod_info"), None)
    if example:
        say()
        say("  kube_pod_info as scraped:       " + starform.format_series(
            {k: v for k, v in example.items() if k != "job"}))
        got = prom.series('kube_pod_info{pod="%s"}' % example["pod"])
        say("  ...as stored at Grafana Cloud:  " + (starform.format_series(got[0]) if got
                                                    else "(missing)"))
    say()

    m = relay.metrics()
    say("promrelay's own counters (GET %s/metrics)" % relay.base)
    rows = [("promrelay_received_samples_total", {}),
            ("promrelay_sent_samples_total", {"destination": "grafana-cloud"}),
            ("promrelay_sent_samples_total", {"destination": "victoriametrics"}),
            ("promrelay_relabel_dropped_series_total", {"destination": "grafana-cloud"}),
            ("promrelay_relabel_dropped_series_total", {"destination": "victoriametrics"}),
            ("promrelay_forbidden_label_violations_total", {"destination": "grafana-cloud"}),
            ("promrelay_dropped_samples_total", {}),
            ("promrelay_send_retries_total", {})]
    for name, labels in rows:
        sel = ",".join('%s="%s"' % kv for kv in labels.items())
        say("  %-73s %d" % ("%s{%s}" % (name, sel), m.sum(name, **labels)))
    if m.sum("promrelay_dropped_samples_total"):
        ok = False
    for dest, held in (("grafana-cloud", pc_samples), ("victoriametrics", vm_samples)):
        sent = m.sum("promrelay_sent_samples_total", destination=dest)
        match = "matches" if sent == sum(held.values()) else "DOES NOT match"
        say("  sent to %-16s %6d samples: %s the %d the sink holds" % (
            dest, sent, match, sum(held.values())))
        if sent != sum(held.values()):
            ok = False
    say()
    if ok:
        say("RESULT: OK - platform series went only to Grafana Cloud, without tenant "
            "identifiers;\n        customer series went only to VictoriaMetrics, labels intact.")
    else:
        say("RESULT: FAILED - the split is not as configured (see above).")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=30, help="seconds of traffic (30)")
    p.add_argument("--tenants", type=int, default=4, help="customer projects (4)")
    p.add_argument("--binary", default=None, help="promrelay binary (default: build/promrelay)")
    p.add_argument("--config", default=CONFIG,
                   help="promrelay config using the ${PROMRELAY_DEMO_*} variables "
                        "(default: config/demo/promrelay.yaml)")
    args = p.parse_args()
    try:
        args.binary = args.binary or harness.promrelay_binary()
        sys.exit(run(args))
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - one readable line, logs were printed
        say("demo failed: %s" % e)
        sys.exit(1)


if __name__ == "__main__":
    import signal

    def interrupted(signum, frame):
        raise KeyboardInterrupt()

    # Also when started in the background by scripts/demo.sh, where a
    # non-interactive shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    main()
