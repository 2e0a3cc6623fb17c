#!/usr/bin/env python3
"""Durability (issue 4, test 3): a full queue with `on_full: reject` pushes
back to a real vmagent, which keeps the data and resends it: nothing is lost
end to end.

VictoriaMetrics is down, so promrelay's small disk queue (1 MiB of
compressed records) fills; promrelay answers 429 (with Retry-After),
vmagent keeps the rejected blocks in its own persistent queue and retries. When VictoriaMetrics returns, promrelay
drains, accepts vmagent's retries, and VictoriaMetrics ends up with exactly
what vmagent was given.
"""

import time

import harness
import starform


def test_durability_full_queue():
    with harness.Env("durability-full-queue") as env:
        vm = env.start_victoria_metrics()
        config = harness.relay_config([harness.destination(
            "victoriametrics", vm.write_url,
            # One shard: the whole max_bytes is available to every request
            # (a request whose share exceeds a shard's room gets a 413).
            queue_config={"shards": 1, "max_samples_per_send": 2000,
                          "batch_send_deadline": "200ms", "min_backoff": "100ms",
                          "max_backoff": "1s"},
            storage={"path": env.path("queue", "victoriametrics"), "max_bytes": "1MiB",
                     "segment_bytes": "128KiB", "on_full": "reject", "fsync": "interval"})])
        relay = env.start_promrelay(config)
        agent = env.start_vmagent(relay.write_url)
        vm.stop()

        series = starform.generate(tenants=6, pods_per_service=2, nodes=3)
        t0 = (int(time.time()) - 1200) * 1000
        stamps = {}
        # Keep vmagent busy until promrelay has refused it a few times
        # (vmagent backs off 2s, 4s, 8s... between retries of a block).
        deadline = time.monotonic() + 45
        for r in range(1000):
            stamps[r] = t0 + r * 1000
            agent.import_prometheus(starform.exposition(series, r, stamps[r]))
            time.sleep(0.1)
            if relay.metrics().sum("promrelay_requests_total", code="429") >= 3 or \
                    time.monotonic() > deadline:
                break
        m = relay.metrics()
        rejected = m.sum("promrelay_requests_total", code="429")
        assert rejected > 0, "the queue never filled: %d rounds, backlog %s" % (
            len(stamps), m.select("promrelay_queue_bytes"))
        harness.log("%d rounds of %d series pushed; promrelay answered 429 %d times" % (
            len(stamps), len(series), rejected))
        assert agent.metrics().sum("vmagent_remotewrite_requests_total",
                                   status_code="429") > 0
        vm.start()

        want = {}
        for i, labels in enumerate(series):
            want[starform.series_key(labels)] = sorted(
                (ts, starform.value(i, r)) for r, ts in stamps.items())
        # vmagent backs off up to a minute between retries of one block.
        harness.wait_for_series(vm.export, want, 100, "VictoriaMetrics after the queue freed")
        m = relay.metrics()
        # 429s are rejections the client retries, not losses: nothing may be
        # counted as dropped.
        assert m.sum("promrelay_rejected_samples_total", reason="queue_full") > 0, \
            m.select("promrelay_rejected_samples_total")
        lost = [(l, v) for l, v in m.select("promrelay_dropped_samples_total") if v > 0]
        assert not lost, lost
        assert agent.metrics().sum("vmagent_remotewrite_retries_count_total") > 0
        harness.log("all %d samples arrived" % harness.count(want))


if __name__ == "__main__":
    harness.main(test_durability_full_queue)
