#!/usr/bin/env python3
"""(b) A real Prometheus 2.42 as the sending agent.

Prometheus scrapes Starform-shaped targets served by the harness (one scrape
job per Starform job, every second) and remote-writes everything, including
its own per-target series (up, scrape_duration_seconds, ...) and metadata
requests, to promrelay. The sender's own TSDB is the ground truth: for a
closed time window, each sink must hold exactly the sender's samples of its
share (platform jobs without tenant labels / everything else intact).
"""

import math
import time

import harness
import starform

SCRAPES = 5


def split_truth(truth):
    """Applies the Starform routing to the sender's series."""
    plat, cust = {}, {}
    for key, samples in truth.items():
        labels = dict(key)
        if starform.is_platform(labels):
            plat[starform.series_key(starform.platform_view(labels))] = samples
        else:
            cust[key] = samples
    return plat, cust


def window_filter(d, start_ms, end_ms):
    out = {}
    for k, samples in d.items():
        kept = [s for s in samples if start_ms <= s[0] <= end_ms]
        if kept:
            out[k] = kept
    return out


def test_prometheus_agent():
    with harness.Env("prometheus-agent") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver()
        relay = env.start_promrelay(harness.starform_config(env, prom, vm))

        series = starform.generate(tenants=2)
        by_job = {}
        for i, labels in enumerate(series):
            by_job.setdefault(labels["job"], []).append(i)
        tick = {"n": 0}

        def render(job):
            if job not in by_job:
                return None
            tick["n"] += 1
            rows = [series[i] for i in by_job[job]]
            return starform.exposition(rows, tick["n"], drop_job=True)

        server = env.start_metrics_server(render)
        scrape_configs = [{
            "job_name": job,
            "metrics_path": "/metrics/" + job,
            "honor_labels": True,  # keep the exporters' own instance labels
            "static_configs": [{"targets": [server.address]}],
        } for job in starform.ALL_JOBS]
        start_s = time.time()
        sender = env.start_prometheus_agent(relay.write_url, scrape_configs)

        # Prometheus' discovery hands targets to the scrapers after ~5s; then
        # let every job be scraped a few times.
        harness.wait_for(lambda: all(server.scrapes.get(j, 0) >= SCRAPES
                                     for j in starform.ALL_JOBS), 60,
                         what="%d scrapes of every job" % SCRAPES)
        # A closed window: everything the sender scraped up to `cut`.
        cut_s = math.floor(time.time() - 1.5)
        cut_ms = cut_s * 1000
        start_ms = int(start_s * 1000) - 5000
        window = "%ds" % (cut_s - int(start_s) + 30)
        truth = sender.export('{__name__=~".+"}', window, cut_s)
        truth = window_filter(truth, start_ms, cut_ms)
        want_platform, want_customer = split_truth(truth)

        # Sanity: the sender really scraped every job, data and synthetic series.
        jobs_seen = {dict(k)["job"] for k in truth}
        assert jobs_seen == set(starform.ALL_JOBS), jobs_seen
        assert any(dict(k)["__name__"] == "up" for k in truth)
        assert len(want_platform) > 0 and len(want_customer) > 0

        harness.wait_for_series(
            lambda: window_filter(vm.export(), start_ms, cut_ms), want_customer, 60,
            "VictoriaMetrics (customer sink)")
        harness.wait_for_series(
            lambda: window_filter(prom.export(window="%ds" % (cut_s - int(start_s) + 30),
                                              time_s=cut_s), start_ms, cut_ms),
            want_platform, 60, "Prometheus (platform sink)")

        for label in starform.TENANT_LABELS:
            assert prom.query('count({%s!=""})' % label) == [], label
        ids = starform.tenant_values(series)
        for s in prom.series():
            assert not starform.leaked_ids(s, ids), "tenant id leaked: %r" % s

        m = relay.metrics()
        assert m.sum("promrelay_dropped_samples_total") == 0, \
            m.select("promrelay_dropped_samples_total")
        assert m.sum("promrelay_requests_total", code="204") >= 1
        sm = sender.metrics()
        failed = sm.sum("prometheus_remote_storage_samples_failed_total")
        assert failed == 0, "the sender saw %d failed samples" % failed
        harness.log("window %ds: platform %d series / %d samples, customer %d / %d" % (
            cut_s - int(start_s), len(want_platform), harness.count(want_platform),
            len(want_customer), harness.count(want_customer)))


if __name__ == "__main__":
    harness.main(test_prometheus_agent)
