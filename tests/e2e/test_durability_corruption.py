#!/usr/bin/env python3
"""Durability (issue 4, test 4): a flipped byte in a queue segment costs
only the damaged record.

With VictoriaMetrics down, requests are acknowledged into the disk queue
(fsync: always, one shard so the records are easy to find). promrelay is
SIGKILLed, one byte in the payload of a record in the middle of a segment is
flipped, and promrelay restarts with VictoriaMetrics back. It must start,
report the damage in its log and a metric, and deliver every other record:
exactly the damaged record's samples are missing.
"""

import re
import time

import harness

REQUESTS = 8


def test_durability_corruption():
    with harness.Env("durability-corruption") as env:
        vm = env.start_victoria_metrics()
        qdir = env.path("queue", "victoriametrics")
        config = harness.relay_config([harness.destination(
            "victoriametrics", vm.write_url,
            queue_config={"shards": 1, "max_samples_per_send": 10000,
                          "batch_send_deadline": "100ms", "min_backoff": "100ms",
                          "max_backoff": "500ms"},
            storage={"path": qdir, "max_bytes": "64MiB", "fsync": "always"})])
        vm.stop()
        relay = env.start_promrelay(config)
        pusher = harness.Pusher(relay, series=30)
        for k in range(REQUESTS):
            r = relay.push(body=harness.rw.rw1_body(pusher.request(k)))
            assert r.status == 204, r
            pusher.acked.append(k)
        relay.kill9()

        records = []
        for seg in harness.segment_files(qdir):
            records += [(seg,) + rec for rec in harness.segment_records(seg)]
        assert len(records) >= 3, "expected several records, found %d in %r" % (
            len(records), harness.segment_files(qdir))
        seg, _, payload_off, length, samples, _ = records[len(records) // 2]
        harness.flip_byte(seg, payload_off + length // 2)
        harness.log("flipped a byte in record %d of %d (%d samples) in %s" % (
            len(records) // 2, len(records), samples, seg))

        vm.start()
        relay.start()
        acked = pusher.expected("acked")
        total = harness.count(acked)

        def settled():
            have = vm.export('{__name__="e2e_durable"}')
            return harness.count(have) == total - samples and have

        try:
            have = harness.wait_for(settled, 30, interval=0.5,
                                    what="all but the damaged record's samples")
        except harness.E2EError:
            have = vm.export('{__name__="e2e_durable"}')
            raise harness.E2EError("expected %d - %d samples, have %d" % (
                total, samples, harness.count(have)))
        time.sleep(2)
        have = vm.export('{__name__="e2e_durable"}')
        assert harness.count(have) == total - samples
        assert not harness.unexpected_samples(have, acked)

        m = relay.metrics()
        damage = [(n, l, v) for n, l, v in m.samples
                  if re.match(r"promrelay_queue_.*(corrupt|damag|truncat|skipped).*", n) and v > 0]
        assert damage, "no queue corruption metric > 0 among %r" % [
            n for n in m.names() if n.startswith("promrelay_queue")]
        log = relay.process.log_text()
        assert re.search(r"corrupt|damage|checksum|crc", log, re.I), \
            "the damage is not reported in the log"
        harness.log("damage reported: %r" % damage)


if __name__ == "__main__":
    harness.main(test_durability_corruption)
