#!/usr/bin/env python3
"""(c) A destination that is down for a while.

VictoriaMetrics (the customer sink) is stopped while requests keep coming.
promrelay keeps answering 204 (the share is queued), retries with backoff
(promrelay_send_retries_total > 0), keeps delivering to the platform sink in
the meantime (destinations are independent), and once VictoriaMetrics is
back on the same port and data dir, every acknowledged sample arrives.
"""

import time

import harness
import starform

ROUNDS_BEFORE = 2
ROUNDS_DURING = 8


def test_destination_outage():
    with harness.Env("outage") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver()
        relay = env.start_promrelay(harness.starform_config(env, prom, vm))

        series = starform.generate(tenants=2)
        t0 = (int(time.time()) - 120) * 1000
        stamps = {}

        def push(r):
            stamps[r] = t0 + r * 1000
            resp = relay.push(starform.rw_series(series, r, stamps[r]))
            assert resp.status == 204, "round %d: %r" % (r, resp)

        for r in range(ROUNDS_BEFORE):
            push(r)
        harness.wait_for_series(vm.export, starform.expected(series, stamps, "customer"), 30,
                                "customer sink before the outage")

        vm.stop()
        harness.log("VictoriaMetrics stopped")
        for r in range(ROUNDS_BEFORE, ROUNDS_BEFORE + ROUNDS_DURING):
            push(r)
            time.sleep(0.25)

        # The platform sink is not held up by the dead one.
        harness.wait_for_series(prom.export, starform.expected(series, stamps, "platform"), 30,
                                "platform sink during the customer outage")

        harness.wait_for(
            lambda: relay.metrics().sum("promrelay_send_retries_total",
                                        destination="customer") > 0,
            30, what="promrelay_send_retries_total{destination=\"customer\"} > 0")
        m = relay.metrics()
        assert m.sum("promrelay_send_retries_total", destination="platform") == 0, \
            m.select("promrelay_send_retries_total")
        assert m.sum("promrelay_dropped_samples_total") == 0, \
            m.select("promrelay_dropped_samples_total")
        # Let a few backoff rounds pass with the sink still down.
        time.sleep(3)
        retries_down = relay.metrics().sum("promrelay_send_retries_total",
                                           destination="customer")

        vm.start()
        harness.log("VictoriaMetrics restarted after %d retries" % retries_down)
        want = starform.expected(series, stamps, "customer")
        harness.wait_for_series(vm.export, want, 60, "customer sink after the outage")

        n_cust = len(stamps) * len([s for s in series if not starform.is_platform(s)])

        def drained():
            mm = relay.metrics()
            return mm.sum("promrelay_sent_samples_total", destination="customer") >= n_cust

        harness.wait_for(drained, 20, what="sent_samples_total{customer} to catch up")
        m = relay.metrics()
        assert m.sum("promrelay_sent_samples_total", destination="customer") == n_cust, \
            m.select("promrelay_sent_samples_total")
        assert m.sum("promrelay_dropped_samples_total") == 0, \
            m.select("promrelay_dropped_samples_total")
        if m.has("promrelay_queue_bytes"):
            harness.wait_for(
                lambda: relay.metrics().sum("promrelay_queue_bytes", destination="customer") == 0,
                20, what="customer queue to drain")
        # Retries stop once the sink is healthy (no storm after recovery).
        r1 = relay.metrics().sum("promrelay_send_retries_total", destination="customer")
        time.sleep(2)
        r2 = relay.metrics().sum("promrelay_send_retries_total", destination="customer")
        assert r1 == r2, "retries went on after recovery: %s -> %s" % (r1, r2)


if __name__ == "__main__":
    harness.main(test_destination_outage)
