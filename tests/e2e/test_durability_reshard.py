#!/usr/bin/env python3
"""Durability: lowering queue_config.shards strands no data.

promrelay queues on disk with 4 shards while VictoriaMetrics is down, and
stops with everything still queued. It restarts with `shards: 2`: the
directories of shards 2 and 3 are still sent from (a warning names them,
the queue gauge counts them), so once VictoriaMetrics is back every
acknowledged sample arrives exactly once.
At the next start those directories are empty and are removed.
"""

import os
import time

import harness


def shard_dirs(queue_dir):
    return sorted(d for d in os.listdir(queue_dir) if d.startswith("shard-"))


def test_durability_reshard():
    with harness.Env("durability-reshard") as env:
        vm = env.start_victoria_metrics()
        vm.stop()
        queue_dir = env.path("queue", "victoriametrics")
        port = harness.free_port()

        def config(shards):
            return harness.relay_config([harness.destination(
                "victoriametrics", vm.write_url,
                # Every series of the pusher has the same job and name: shard
                # by its own label so that all four shards get some.
                queue_config={"shards": shards, "shard_by": ["s"],
                              "max_samples_per_send": 500,
                              "batch_send_deadline": "100ms",
                              "min_backoff": "50ms", "max_backoff": "500ms"},
                storage={"path": queue_dir, "max_bytes": "256MiB",
                         "on_full": "reject", "fsync": "interval"})],
                listen_port=port)

        relay = env.start_promrelay(config(4))
        pusher = harness.Pusher(relay, series=40, interval=0.01)
        pusher.start()
        time.sleep(2)
        pusher.stop()
        statuses = pusher.status_summary()
        assert set(statuses) <= {200, 204} and pusher.acked, statuses
        acked = pusher.expected("acked")
        queued = relay.metrics().sum("promrelay_queue_samples",
                                     destination="victoriametrics")
        assert queued == harness.count(acked), (queued, harness.count(acked))
        relay.stop()
        assert shard_dirs(queue_dir) == ["shard-0", "shard-1", "shard-2", "shard-3"]

        # Restart with fewer shards, the sink still down: the removed shards'
        # samples are reported as queued, then sent once the sink is back.
        relay.write_config(config(2))
        relay.start()
        log = relay.process.log_text()
        for i in (2, 3):
            assert "shard-%d" % i in log and "left by a run with more shards" in log, \
                relay.process.log_tail()
        harness.wait_for(lambda: relay.metrics().sum(
            "promrelay_queue_samples", destination="victoriametrics") == queued, 10,
            what="promrelay_queue_samples counting all four shards' samples")
        vm.start()
        harness.wait_for_series(lambda: vm.export('{__name__="e2e_durable"}'), acked, 60,
                                "VictoriaMetrics after lowering the shards")
        harness.wait_for(lambda: relay.metrics().sum(
            "promrelay_queue_samples", destination="victoriametrics") == 0, 20,
            what="every shard queue drained")
        m = relay.metrics()
        assert m.sum("promrelay_dropped_samples_total") == 0, \
            m.select("promrelay_dropped_samples_total")
        relay.stop()

        # Drained directories of the removed shards go at the next start.
        relay.start()
        harness.wait_for(lambda: shard_dirs(queue_dir) == ["shard-0", "shard-1"], 10,
                         what="empty shard-2 and shard-3 removed")
        assert "removed an empty shard directory" in relay.process.log_text()
        relay.stop()
        harness.log("%d acknowledged samples queued over 4 shards, all delivered "
                    "after restarting with 2" % harness.count(acked))


if __name__ == "__main__":
    harness.main(test_durability_reshard)
