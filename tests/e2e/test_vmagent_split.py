#!/usr/bin/env python3
"""(a) vmagent -> promrelay -> VictoriaMetrics (customer) and a TLS + basic
auth Prometheus (platform, the Grafana Cloud stand-in).

vmagent receives Starform-shaped series with explicit timestamps on its
/api/v1/import/prometheus endpoint and remote-writes them to promrelay, so
the exact content of both sinks is known in advance:

  * the platform sink holds exactly the platform jobs' series, with
    project_id/service_id/workspace_id removed, every sample once;
  * VictoriaMetrics holds exactly the customer series with all their labels;
  * no tenant identifier value appears anywhere at the platform sink;
  * promrelay's counters agree with what arrived.
"""

import re
import time

import harness
import starform

ROUNDS = 5


def test_vmagent_split():
    with harness.Env("vmagent-split") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver()
        relay = env.start_promrelay(harness.starform_config(env, prom, vm))
        agent = env.start_vmagent(relay.write_url)

        series = starform.generate(tenants=3)
        platform, customer = starform.split(series)
        # Timestamps in the recent past, 1s apart, as a 1s scrape would make.
        t0 = (int(time.time()) - 120) * 1000
        stamps = {r: t0 + r * 1000 for r in range(ROUNDS)}
        for r, ts in stamps.items():
            agent.import_prometheus(starform.exposition(series, r, ts))

        want_platform = starform.expected(series, stamps, "platform")
        want_customer = starform.expected(series, stamps, "customer")
        harness.wait_for_series(lambda: vm.export(dedup=False), want_customer, 60,
                                "VictoriaMetrics (customer sink)")
        harness.wait_for_series(prom.export, want_platform, 60,
                                "Prometheus (platform sink)")

        # Nothing more trickles in afterwards (no duplicates, no late extras).
        time.sleep(2)
        assert vm.export(dedup=False) == want_customer, harness.diff_series(
            vm.export(dedup=False), want_customer)
        assert prom.export() == want_platform

        # GDPR: no tenant label, and no tenant identifier value under any
        # label name, reached the platform sink.
        for label in starform.TENANT_LABELS:
            leaked = prom.query('count({%s!=""})' % label)
            assert leaked == [], "platform sink has series with %s: %r" % (label, leaked)
        ids = starform.tenant_values(series)
        for s in prom.series():
            assert not starform.leaked_ids(s, ids), "tenant id leaked in %r" % s
        # ...while every customer series kept all of them.
        assert len(vm.series('{project_id!="",service_id!="",workspace_id!=""}')) == \
            len(customer)
        assert vm.series('{job=~"%s"}' % starform.PLATFORM_JOB_REGEX) == []

        n_plat = ROUNDS * len(platform)
        n_cust = ROUNDS * len(customer)

        def counters_settled():
            m = relay.metrics()
            return (m.sum("promrelay_sent_samples_total", destination="platform") == n_plat
                    and m.sum("promrelay_sent_samples_total", destination="customer") == n_cust)

        harness.wait_for(counters_settled, 15, what="promrelay_sent_samples_total")
        m = relay.metrics()
        assert m.sum("promrelay_received_samples_total") == ROUNDS * len(series), \
            m.select("promrelay_received_samples_total")
        assert m.sum("promrelay_dropped_samples_total") == 0, \
            m.select("promrelay_dropped_samples_total")
        assert m.sum("promrelay_forbidden_label_violations_total") == 0
        # Every customer series was relabel-dropped for the platform at least
        # once per round it was in; never for its own destination.
        assert m.sum("promrelay_relabel_dropped_series_total", destination="customer") >= \
            len(platform)
        assert m.sum("promrelay_relabel_dropped_series_total", destination="platform") >= \
            len(customer)
        assert m.sum("promrelay_requests_total", code="204") >= 1
        assert m.sum("promrelay_requests_total", code=re.compile("[45].*")) == 0, \
            m.select("promrelay_requests_total")
        harness.log("platform: %d series / %d samples; customer: %d series / %d samples" % (
            len(platform), n_plat, len(customer), n_cust))
        # DESIGN.md: SIGTERM drains and exits 0.
        agent.stop()
        rc = relay.stop()
        assert rc == 0, "promrelay exited with %s on SIGTERM" % rc


if __name__ == "__main__":
    harness.main(test_vmagent_split)
