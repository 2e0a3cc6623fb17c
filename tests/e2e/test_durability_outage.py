#!/usr/bin/env python3
"""Durability (issue 4, test 2): VictoriaMetrics stopped for a minute under
load. The disk backlog grows, nothing is rejected below max_bytes, and after
the restart everything arrives and the backlog returns to 0, while live
traffic keeps being accepted during the drain.

E2E_OUTAGE_SECONDS (default 60) sets the outage length.
"""

import os
import time

import harness

OUTAGE = float(os.environ.get("E2E_OUTAGE_SECONDS", "60"))


def queue_bytes(relay):
    return relay.metrics().sum("promrelay_queue_bytes", destination="victoriametrics")


def test_durability_outage():
    with harness.Env("durability-outage") as env:
        vm = env.start_victoria_metrics()
        config = harness.relay_config([harness.destination(
            "victoriametrics", vm.write_url,
            queue_config={"max_samples_per_send": 2000, "batch_send_deadline": "200ms",
                          "min_backoff": "100ms", "max_backoff": "2s"},
            storage={"path": env.path("queue", "victoriametrics"), "max_bytes": "512MiB",
                     "on_full": "reject", "fsync": "interval"})])
        relay = env.start_promrelay(config)
        pusher = harness.Pusher(relay, series=100, interval=0.02)
        pusher.start()
        time.sleep(2)

        vm.stop()
        harness.log("VictoriaMetrics stopped for %.0fs" % OUTAGE)
        t_stop = time.monotonic()
        samples = []
        while time.monotonic() - t_stop < OUTAGE:
            time.sleep(min(OUTAGE / 4, 15))
            samples.append(queue_bytes(relay))
            harness.log("  backlog %d bytes, requests %r" % (samples[-1],
                                                             pusher.status_summary()))
        assert samples == sorted(samples) and samples[-1] > samples[0] > 0, \
            "backlog did not grow during the outage: %r" % samples
        statuses = pusher.status_summary()
        assert set(statuses) <= {204, 200}, "requests rejected below max_bytes: %r" % statuses

        acked_before_restart = len(pusher.acked)
        vm.start()
        harness.log("VictoriaMetrics back; draining %d bytes" % samples[-1])
        time.sleep(3)  # live traffic continues during the drain
        pusher.stop()
        assert len(pusher.acked) > acked_before_restart, "live traffic starved during drain"
        statuses = pusher.status_summary()
        assert set(statuses) <= {204, 200}, statuses

        acked = pusher.expected("acked")
        harness.wait_for_series(lambda: vm.export('{__name__="e2e_durable"}'), acked, 45,
                                "VictoriaMetrics after the outage")
        harness.wait_for(lambda: queue_bytes(relay) == 0, 20, what="backlog back to 0")
        m = relay.metrics()
        assert m.sum("promrelay_dropped_samples_total") == 0, \
            m.select("promrelay_dropped_samples_total")
        assert m.sum("promrelay_send_retries_total", destination="victoriametrics") > 0
        harness.log("%d samples acknowledged, all delivered; peak backlog %d bytes" % (
            harness.count(acked), max(samples)))


if __name__ == "__main__":
    harness.main(test_durability_outage)
