#!/usr/bin/env python3
"""Durability (issue 4, test 1): SIGKILL promrelay again and again under
continuous load with `fsync: always`; no acknowledged sample is lost.

A pusher sends unique samples without pause and notes which requests got a
2xx. promrelay is killed with SIGKILL KILLS times at random moments and
restarted on the same config and queue directory. Afterwards every sample
whose request was acknowledged is in VictoriaMetrics (counted exactly, zero
lost). VictoriaMetrics is down during the first half of the kills, so they
hit a backlog that exists only in promrelay's queue, and nothing arrives that was never sent. Unacknowledged requests
(cut off by a kill) may or may not have arrived; both are fine.
"""

import os
import random
import time

import harness

KILLS = int(os.environ.get("E2E_KILLS", "10"))


def test_durability_kill9():
    rng = random.Random(int(os.environ.get("E2E_SEED", "0")) or None)
    with harness.Env("durability-kill9") as env:
        vm = env.start_victoria_metrics()
        config = harness.relay_config([harness.destination(
            "victoriametrics", vm.write_url,
            queue_config={"max_samples_per_send": 1000, "batch_send_deadline": "100ms",
                          "min_backoff": "50ms", "max_backoff": "1s"},
            storage={"path": env.path("queue", "victoriametrics"), "max_bytes": "256MiB",
                     "on_full": "reject", "fsync": "always"})])
        relay = env.start_promrelay(config)
        pusher = harness.Pusher(relay, series=40, interval=0.01)
        pusher.start()
        for i in range(KILLS):
            # The first half of the kills hit a backlog (VictoriaMetrics
            # down: acknowledged data exists only in promrelay's queue), the
            # rest hit data in flight to a live sink.
            if i == 0:
                vm.stop()
            if i == KILLS // 2:
                vm.start()
            time.sleep(rng.uniform(0.3, 1.2))
            relay.kill9()
            acked_so_far = len(pusher.acked)
            relay.start()
            harness.log("kill %d/%d (VictoriaMetrics %s): %d requests acknowledged so far" % (
                i + 1, KILLS, "up" if vm.process.running() else "down", acked_so_far))
        time.sleep(1)
        pusher.stop()
        statuses = pusher.status_summary()
        acked = pusher.expected("acked")
        attempted = pusher.expected("attempted")
        n_acked = harness.count(acked)
        assert len(pusher.acked) > KILLS, "too few acknowledged requests: %r" % statuses

        def all_there():
            have = vm.export('{__name__="e2e_durable"}')
            return not harness.missing_samples(have, acked) and have

        try:
            have = harness.wait_for(all_there, 60, interval=1,
                                    what="every acknowledged sample in VictoriaMetrics")
        except harness.E2EError:
            have = vm.export('{__name__="e2e_durable"}')
            lost = harness.missing_samples(have, acked)
            raise harness.E2EError("%d of %d acknowledged samples lost (statuses %r), e.g. %r" % (
                harness.count(lost), n_acked, statuses,
                [(harness.describe(k), v[:5]) for k, v in list(lost.items())[:3]]))
        extra = harness.unexpected_samples(have, attempted)
        assert not extra, "samples that were never sent: %r" % list(extra.items())[:3]
        harness.log("%d kills; %d requests: %r; %d acknowledged samples all present, "
                    "%d samples present in total" % (KILLS, len(pusher.attempted), statuses,
                                                     n_acked, harness.count(have)))


if __name__ == "__main__":
    harness.main(test_durability_kill9)
