#!/usr/bin/env python3
"""SIGTERM sends what memory queues hold, then exits 0.

DESIGN.md: on SIGTERM the listener closes, requests being handled finish,
and every destination sends what is queued before promrelay exits. Memory
queue destinations send from the HTTP server's I/O threads, so the order of
the shutdown matters: the senders must drain while those threads still run.
Here nothing can leave before the signal (batches wait for an hour and hold
far more than is sent), so every sample that reaches VictoriaMetrics was
sent by the shutdown drain, and must arrive exactly once.
"""

import time

import harness

REQUESTS = 40
SERIES_PER_REQUEST = 100


def test_shutdown_drain():
    with harness.Env("shutdown-drain") as env:
        vm = env.start_victoria_metrics()
        hold = {"shards": 4, "max_samples_per_send": 1000000,
                "batch_send_deadline": "1h"}
        config = harness.relay_config(
            [harness.destination("platform", vm.write_url, "e2e-platform", keep=True,
                                 queue_config=hold),
             harness.destination("customer", vm.write_url, "e2e-platform", keep=False,
                                 queue_config=hold)],
            server={"shutdown_timeout": "30s"})
        relay = env.start_promrelay(config)

        t0 = (int(time.time()) - 120) * 1000
        expected = {}
        for r in range(REQUESTS):
            batch = []
            for i in range(SERIES_PER_REQUEST):
                job = "e2e-platform" if i % 3 == 0 else "e2e-customer"
                labels = {"__name__": "e2e_drain", "job": job, "series": str(i)}
                sample = (t0 + r * 1000, float(r * SERIES_PER_REQUEST + i))
                batch.append((labels, [sample]))
                expected.setdefault(frozenset(labels.items()), []).append(sample)
            res = relay.push(batch)
            assert res.status == 204, "request %d: %r" % (r, res)
        total = REQUESTS * SERIES_PER_REQUEST

        m = relay.metrics()
        queued = m.sum("promrelay_queue_samples")
        sent = m.sum("promrelay_sent_samples_total")
        assert queued == total and sent == 0, (
            "before SIGTERM everything should wait in the queues: %d queued, %d sent"
            % (queued, sent))

        rc = relay.stop(timeout=40)
        assert rc == 0, "promrelay exited with %s on SIGTERM" % rc
        log = relay.process.log_text()
        assert "sending what is queued" in log, relay.process.log_tail()
        assert "stopped with samples still queued" not in log, relay.process.log_tail()

        vm.flush()
        got = harness.wait_for_series(lambda: vm.export('{__name__="e2e_drain"}', dedup=False),
                                      expected, 30, "VictoriaMetrics after the drain")
        harness.log("drained %d samples of %d series on SIGTERM, each once" % (
            total, len(got)))


if __name__ == "__main__":
    harness.main(test_shutdown_drain)
