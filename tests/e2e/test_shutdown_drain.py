#!/usr/bin/env python3
"""Held data leaves when its destination goes away: a destination removed by
POST /-/reload sends what its memory queue holds, and on SIGTERM the others
send theirs; promrelay exits 0.

DESIGN.md: on SIGTERM the listener closes, requests being handled finish,
and every destination sends what is queued before promrelay exits.
Memory-queue destinations send from the HTTP server's I/O threads, so the
order matters: senders must drain while those threads still run, and a
reload (handled on one of them) must not wait for work only that thread
could do. Both are run with the default two I/O threads (destinations on
the shared loop) and with `io_threads: 1` (destinations on threads of their
own). Nothing can leave before the reload or the signal (batches wait for an
hour and hold far more than is sent), so every sample that reaches
VictoriaMetrics was sent by a drain, and must arrive exactly once.
"""

import time

import harness

REQUESTS = 40
SERIES_PER_REQUEST = 100
HOLD = {"shards": 4, "max_samples_per_send": 1000000, "batch_send_deadline": "1h"}


def config(port, vm, io_threads, with_removed):
    dests = [harness.destination("customer", vm.write_url, "e2e-platform|e2e-gone",
                                 keep=False, queue_config=HOLD),
             harness.destination("platform", vm.write_url, "e2e-platform", keep=True,
                                 queue_config=HOLD)]
    if with_removed:
        dests.append(harness.destination("gone", vm.write_url, "e2e-gone", keep=True,
                                         queue_config=HOLD))
    return harness.relay_config(dests, listen_port=port,
                                server={"shutdown_timeout": "30s",
                                        "io_threads": io_threads})


def drain(io_threads):
    with harness.Env("shutdown-drain-%d" % io_threads) as env:
        vm = env.start_victoria_metrics()
        port = harness.free_port()
        relay = env.start_promrelay(config(port, vm, io_threads, with_removed=True))

        t0 = (int(time.time()) - 120) * 1000
        expected = {}
        for r in range(REQUESTS):
            batch = []
            for i in range(SERIES_PER_REQUEST):
                job = ("e2e-platform", "e2e-customer", "e2e-gone")[i % 3]
                labels = {"__name__": "e2e_drain", "job": job, "series": str(i)}
                sample = (t0 + r * 1000, float(r * SERIES_PER_REQUEST + i))
                batch.append((labels, [sample]))
                expected.setdefault(frozenset(labels.items()), []).append(sample)
            res = relay.push(batch)
            assert res.status == 204, "request %d: %r" % (r, res)
        total = REQUESTS * SERIES_PER_REQUEST
        gone = {k: v for k, v in expected.items() if ("job", "e2e-gone") in k}

        m = relay.metrics()
        queued = m.sum("promrelay_queue_samples")
        sent = m.sum("promrelay_sent_samples_total")
        assert queued == total and sent == 0, (
            "before the reload everything should wait in the queues: %d queued, %d sent"
            % (queued, sent))

        # The reload removes "gone": its sender sends what it holds, then
        # stops; the request answers once that is done.
        relay.write_config(config(port, vm, io_threads, with_removed=False))
        r = harness.http_request(relay.base + "/-/reload", method="POST", body=b"")
        assert r.status == 200, "POST /-/reload -> %r" % r
        assert "removed destination stopped with samples still queued" not in \
            relay.process.log_text(), relay.process.log_tail()
        vm.flush()
        harness.wait_for_series(
            lambda: vm.export('{__name__="e2e_drain",job="e2e-gone"}', dedup=False),
            gone, 30, "VictoriaMetrics after the reload removed a destination")
        m = relay.metrics()
        still_sent = sum(m.sum("promrelay_sent_samples_total", destination=d)
                         for d in ("platform", "customer"))
        assert still_sent == 0, "the remaining destinations should still hold everything"

        rc = relay.stop(timeout=40)
        assert rc == 0, "promrelay exited with %s on SIGTERM" % rc
        log = relay.process.log_text()
        assert "sending what is queued" in log, relay.process.log_tail()
        assert "stopped with samples still queued" not in log, relay.process.log_tail()

        vm.flush()
        got = harness.wait_for_series(lambda: vm.export('{__name__="e2e_drain"}', dedup=False),
                                      expected, 30, "VictoriaMetrics after the drain")
        harness.log("io_threads %d: %d samples of %d series drained (%d by the reload), "
                    "each once" % (io_threads, total, len(got), sum(map(len, gone.values()))))


def test_shutdown_drain():
    drain(2)
    drain(1)


if __name__ == "__main__":
    harness.main(test_shutdown_drain)
