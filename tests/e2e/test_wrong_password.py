#!/usr/bin/env python3
"""(d) A wrong password at the platform sink.

The TLS + basic-auth Prometheus answers 401 to promrelay's credentials. A 401
is not retryable: every platform sample must be dropped and counted under a
401 reason, with no retries. A second platform-shaped destination, a
recording sink in the harness that also answers 401, counts the requests
promrelay makes, so "no retry storm" is measured, not assumed. The customer
destination is unaffected, and the password never shows up in promrelay's
log or /metrics.
"""

import re
import time

import harness
import starform

ROUNDS = 6


def test_wrong_password():
    with harness.Env("wrong-password") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver(password="the-right-password")
        wrong = "wr0ng-pa55word-%d" % int(time.time())
        pwfile = env.write("secrets/platform-password", wrong + "\n", mode=0o600)
        config = harness.starform_config(env, prom, vm, platform_password_file=pwfile)
        recorder = env.start_recording_sink(auth=("platform", "the-right-password"))
        copy = dict(config["remote_write"][0])
        copy.update(name="platform-copy", url=recorder.url,
                    basic_auth={"username": "platform", "password_file": pwfile})
        copy.pop("tls_config", None)
        config["remote_write"].append(copy)
        relay = env.start_promrelay(config)

        series = starform.generate(tenants=2)
        platform, customer = starform.split(series)
        t0 = (int(time.time()) - 120) * 1000
        stamps = {}
        for r in range(ROUNDS):
            stamps[r] = t0 + r * 1000
            resp = relay.push(starform.rw_series(series, r, stamps[r]))
            assert resp.status == 204, resp

        n_plat = ROUNDS * len(platform)
        reason401 = re.compile(".*401.*")

        def all_dropped():
            m = relay.metrics()
            return all(m.sum("promrelay_dropped_samples_total", destination=d,
                             reason=reason401) == n_plat
                       for d in ("platform", "platform-copy"))

        try:
            harness.wait_for(all_dropped, 30, what="401 drops to be counted")
        except harness.E2EError:
            raise harness.E2EError("dropped_samples_total: %r" % (
                relay.metrics().select("promrelay_dropped_samples_total"),))

        # The customer destination does not care.
        harness.wait_for_series(vm.export, starform.expected(series, stamps, "customer"), 30,
                                "customer sink")

        requests_after_drops = recorder.request_count()
        time.sleep(3)  # several max_backoff periods: a retry loop would show
        m = relay.metrics()
        for d in ("platform", "platform-copy"):
            assert m.sum("promrelay_send_retries_total", destination=d) == 0, \
                m.select("promrelay_send_retries_total")
            assert m.sum("promrelay_sent_samples_total", destination=d) == 0
            assert m.sum("promrelay_dropped_samples_total", destination=d) == n_plat, \
                m.select("promrelay_dropped_samples_total")
        # One request per batch at most: each push's platform share is at
        # most one batch per shard (max_samples_per_send is larger than it).
        shards = config["remote_write"][0]["queue_config"].get("shards", 4)
        n_req = recorder.request_count()
        assert n_req == requests_after_drops, "requests kept coming: %d -> %d" % (
            requests_after_drops, n_req)
        assert 1 <= n_req <= ROUNDS * shards, "%d requests for %d pushes" % (n_req, ROUNDS)
        assert all(r["status"] == 401 for r in recorder.requests)
        assert recorder.samples() == n_plat, (recorder.samples(), n_plat)
        assert prom.series() == []

        for where, text in (("log", relay.process.log_text()), ("/metrics", m.text)):
            assert wrong not in text, "the password appears in promrelay's %s" % where
        harness.log("%d platform samples dropped per destination with %d requests" % (
            n_plat, n_req))


if __name__ == "__main__":
    harness.main(test_wrong_password)
