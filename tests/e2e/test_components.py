#!/usr/bin/env python3
"""The harness against the real third-party components, without promrelay:
if this fails, the other e2e tests' failures say nothing about promrelay.

Checks: the pure-Python RW1 codec is accepted by VictoriaMetrics and
Prometheus and decodes what real agents send (real snappy compression); the
Prometheus stand-in serves TLS with the test CA and enforces basic auth;
vmagent forwards imported text exposition with its timestamps to both sinks;
a VictoriaMetrics restart on the same port and data dir keeps its data.
"""

import ssl
import time
import urllib.error

import harness
import rw
import starform


def check_codec():
    series = [({"__name__": "m", "a": "1"}, [(1700000000000, 1.5), (1700000001000, -2.0)]),
              ({"__name__": "m", "a": "2", "\u00e9": "\u2603"}, [(-5, float("inf"))])]
    body = rw.encode_write_request(series)
    assert rw.decode_write_request(rw.snappy_decompress(rw.snappy_compress(body))) == \
        [(dict(labels), samples) for labels, samples in series]
    big = bytes(range(256)) * 1000
    assert rw.snappy_decompress(rw.snappy_compress(big)) == big
    assert rw.snappy_decompress(rw.snappy_bomb(64 * 100 + 1)) == b"\x00" * 6401
    for bad in (rw.snappy_lying_header(100, b"abc"), rw.snappy_compress(body)[:-2]):
        try:
            rw.snappy_decompress(bad)
        except ValueError:
            continue
        raise AssertionError("decoded a broken block")


def test_components():
    check_codec()
    with harness.Env("components") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver()
        t0 = (int(time.time()) - 60) * 1000
        series = [({"__name__": "direct", "job": "x", "i": str(i)},
                   [(t0 + k * 1000, float(i * 10 + k)) for k in range(3)]) for i in range(4)]
        want = {frozenset(labels.items()): samples for labels, samples in series}

        # Our encoder, straight into VictoriaMetrics.
        r = harness.http_request(vm.write_url, "POST", rw.rw1_body(series), rw.RW1_HEADERS)
        assert r.status == 204, r
        harness.wait_for_series(lambda: vm.export('{__name__="direct"}'), want, 20, "VM direct")

        # The Prometheus stand-in: TLS with our CA, basic auth enforced.
        body = rw.rw1_body(series)
        for auth in (None, ("platform", "wrong")):
            r = harness.http_request(prom.write_url, "POST", body, rw.RW1_HEADERS,
                                     ssl_context=prom.ssl_context, auth=auth)
            assert r.status == 401, (auth and auth[1], r)
        try:
            harness.http_request(prom.write_url, "POST", body, rw.RW1_HEADERS,
                                 ssl_context=ssl.create_default_context(), auth=prom.auth)
            raise AssertionError("TLS verified without the test CA")
        except (ssl.SSLError, urllib.error.URLError) as e:
            assert "CERTIFICATE_VERIFY_FAILED" in str(e), e
        r = harness.http_request(prom.write_url, "POST", body, rw.RW1_HEADERS,
                                 ssl_context=prom.ssl_context, auth=prom.auth)
        assert r.status == 204, r
        harness.wait_for_series(lambda: prom.export('{__name__="direct"}'), want, 20,
                                "Prometheus direct")
        # The certificate is valid for "localhost" too (server_name tests).
        ctx = ssl.create_default_context(cafile=prom.tls["ca"])
        r = harness.http_request("https://localhost:%d/-/ready" % prom.port, ssl_context=ctx,
                                 auth=prom.auth)
        assert r.status == 200, r

        # vmagent forwarding to both, Prometheus over TLS with basic auth.
        agent = env.start_vmagent(
            [vm.write_url, prom.write_url],
            extra_args=["-remoteWrite.basicAuth.username=,%s" % prom.username,
                        "-remoteWrite.basicAuth.password=,%s" % prom.password,
                        "-remoteWrite.tlsCAFile=,%s" % prom.tls["ca"]])
        sf = starform.generate(tenants=2)
        stamps = {r: t0 + 10000 + r * 1000 for r in range(3)}
        for rnd, ts in stamps.items():
            agent.import_prometheus(starform.exposition(sf, rnd, ts))
        every = {}
        for i, labels in enumerate(sf):
            every[starform.series_key(labels)] = [(ts, starform.value(i, rnd))
                                                  for rnd, ts in stamps.items()]
        match = '{job=~"%s"}' % "|".join(starform.ALL_JOBS)
        harness.wait_for_series(lambda: vm.export(match, dedup=False), every, 30,
                                "vmagent -> VM")
        harness.wait_for_series(lambda: prom.export(match), every, 30, "vmagent -> Prometheus")
        assert len(starform.expected(sf, stamps, "platform")) + \
            len(starform.expected(sf, stamps, "customer")) == len(sf)

        # A real Prometheus scraping the harness and remote-writing to the
        # recording sink: the Python snappy decoder reads real compression.
        sink = env.start_recording_sink()
        server = env.start_metrics_server(
            lambda job: starform.exposition([s for s in sf if s["job"] == job], 1,
                                            drop_job=True) if job in starform.ALL_JOBS else None)
        env.start_prometheus_agent(sink.url, [{
            "job_name": "shuttle", "metrics_path": "/metrics/shuttle", "honor_labels": True,
            "static_configs": [{"targets": [server.address]}]}])

        def got_shuttle():
            names = set()
            for req in list(sink.requests):
                assert "error" not in req, req["error"]
                for labels, _ in req["series"] or []:
                    names.add(labels.get("__name__"))
            return "starform_informer_last_event_timestamp_seconds" in names and "up" in names

        harness.wait_for(got_shuttle, 30, what="Prometheus agent -> recording sink")
        assert sink.requests[0]["headers"].get("Content-Encoding") == "snappy"

        # VictoriaMetrics restarts on the same port and data dir.
        vm.stop()
        assert not harness.port_open(vm.port)
        vm.start()
        harness.wait_for_series(lambda: vm.export('{__name__="direct"}'), want, 20,
                                "VM after restart")


if __name__ == "__main__":
    harness.main(test_components)
