#!/usr/bin/env python3
"""(e) Malformed and oversized requests get the documented 4xx with a
message, and promrelay keeps serving.

DESIGN.md: 400 malformed body (the message says what), 413 too large (the
compressed body over server.max_request_bytes, or what it decompresses to
over the decompressed cap), 415 unsupported content type or encoding,
including the remote-write 2.0 content type until RW2 exists. After every
bad request a good one still gets 204, and at the end the sink holds exactly
the good requests' samples: nothing from a rejected request leaked through.
"""

import re
import time

import harness
import rw

MAX_REQUEST_BYTES = 8 << 20  # leaves room for a snappy bomb under it


def test_bad_requests():
    with harness.Env("bad-requests") as env:
        sink = env.start_recording_sink()
        config = harness.relay_config(
            [harness.destination("sink", sink.url,
                                 queue_config={"batch_send_deadline": "100ms"})],
            server={"max_request_bytes": MAX_REQUEST_BYTES})
        relay = env.start_promrelay(config)

        t0 = (int(time.time()) - 60) * 1000
        good_count = {"n": 0}
        sent = {}

        def good():
            i = good_count["n"]
            good_count["n"] += 1
            labels = {"__name__": "e2e_good", "job": "e2e", "i": str(i)}
            sent[frozenset(labels.items())] = [(t0 + i, float(i))]
            r = relay.push([(labels, [(t0 + i, float(i))])])
            assert r.status == 204, "good request %d after a bad one: %r" % (i, r)
            assert relay.process.running()

        def bad_series_body(labels):
            return rw.rw1_body([(labels, [(t0, 1.0)])])

        valid = rw.encode_write_request([({"__name__": "e2e_bad", "job": "e2e"}, [(t0, 1.0)])])
        cases = [
            # (what, expected status(es), kwargs for relay.push or raw)
            ("garbage body, not snappy", {400}, dict(body=b"this is not snappy at all \xff\xfe")),
            ("empty body", {400}, dict(body=b"")),
            ("valid snappy, garbage protobuf", {400},
             dict(body=rw.snappy_compress(b"\x0a\xff\xff\xff\xff\x0f\x01\x02"))),
            ("truncated snappy", {400}, dict(body=rw.snappy_compress(valid)[:-3])),
            ("snappy header longer than data", {400},
             dict(body=rw.snappy_lying_header(len(valid) + 100, valid))),
            ("label value over max_label_value_length", {400, 413},
             dict(body=bad_series_body({"__name__": "e2e_bad", "v": "x" * 20000}))),
            ("more labels than max_labels_per_series", {400, 413},
             dict(body=bad_series_body(dict([("__name__", "e2e_bad")] +
                                            [("l%03d" % i, "v") for i in range(300)])))),
            ("content type text/plain", {415},
             dict(series=[({"__name__": "e2e_bad"}, [(t0, 1.0)])],
                  headers={"Content-Type": "text/plain"})),
            ("content type application/json", {415},
             dict(series=[({"__name__": "e2e_bad"}, [(t0, 1.0)])],
                  headers={"Content-Type": "application/json"})),
            ("content encoding gzip", {415},
             dict(series=[({"__name__": "e2e_bad"}, [(t0, 1.0)])],
                  headers={"Content-Encoding": "gzip"})),
            ("remote write 2.0 content type", {415},
             dict(series=[({"__name__": "e2e_bad"}, [(t0, 1.0)])],
                  headers={"Content-Type": rw.RW2_CONTENT_TYPE,
                           "X-Prometheus-Remote-Write-Version": "2.0.0"})),
        ]
        statuses = {}
        failures = []
        good()
        for what, want, kw in cases:
            r = relay.push(**kw)
            statuses[r.status] = statuses.get(r.status, 0) + 1
            harness.log("%-45s -> %d %s" % (what, r.status, r.text.strip()[:100]))
            if r.status not in want:
                failures.append("%s: got %d %r, want %s" % (what, r.status, r.text[:200], want))
            elif not r.text.strip():
                failures.append("%s: %d without a message" % (what, r.status))
            good()

        # Too large: the compressed body over max_request_bytes, sent as a
        # whole (promrelay may answer before reading it all) and chunked.
        big = b"\x00" * (MAX_REQUEST_BYTES + 4096)
        for chunked in (False, True):
            what = "body over max_request_bytes%s" % (" (chunked)" if chunked else "")
            r = harness.raw_http(relay.port, "POST", "/api/v1/write", rw.RW1_HEADERS, big,
                                 chunked=chunked)
            statuses[r.status] = statuses.get(r.status, 0) + 1
            harness.log("%-45s -> %d %s" % (what, r.status, r.text.strip()[:100]))
            if r.status != 413 or not r.text.strip():
                failures.append("%s: got %d %r, want 413 with a message" % (
                    what, r.status, r.text[:200]))
            good()

        # A snappy bomb: ~6 MiB that expands past the 128 MiB decompressed cap.
        bomb = rw.snappy_bomb(128 * (1 << 20) + 64 * 1024 + 1)
        assert len(bomb) < MAX_REQUEST_BYTES
        r = relay.push(body=bomb)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        harness.log("%-45s -> %d %s" % ("snappy bomb", r.status, r.text.strip()[:100]))
        if r.status != 413 or not r.text.strip():
            failures.append("snappy bomb: got %d %r, want 413" % (r.status, r.text[:200]))
        good()

        # Not the write endpoint / not POST.
        r = harness.http_request(relay.base + "/api/v1/write")
        if r.status not in (404, 405):
            failures.append("GET /api/v1/write: got %d, want 405 (or 404)" % r.status)
        r = harness.http_request(relay.base + "/no/such/path", method="POST", body=b"x")
        if r.status != 404:
            failures.append("POST /no/such/path: got %d, want 404" % r.status)
        for alias in ("/api/v1/push", "/api/prom/push"):
            labels = {"__name__": "e2e_good", "job": "e2e", "alias": alias}
            sent[frozenset(labels.items())] = [(t0, 1.0)]
            r = relay.push([(labels, [(t0, 1.0)])], path=alias)
            if r.status != 204:
                failures.append("alias %s: got %r, want 204" % (alias, r))
        good()

        assert harness.http_ok(relay.base + "/-/healthy")
        assert relay.process.running(), "promrelay died"
        assert not failures, "\n".join(failures)

        # Exactly the good requests' samples reached the sink.
        def received():
            got = {}
            for req in list(sink.requests):
                for labels, samples in req["series"] or []:
                    got.setdefault(frozenset(labels.items()), []).extend(samples)
            return {k: sorted(v) for k, v in got.items()}

        harness.wait_for_series(received, sent, 20, "recording sink")
        m = relay.metrics()
        for code, n in statuses.items():
            got = m.sum("promrelay_requests_total", code=str(code))
            assert got >= n, "requests_total{code=%d} is %s, sent %d" % (code, got, n)
        assert m.sum("promrelay_requests_total", code="204") >= good_count["n"]
        assert m.sum("promrelay_received_samples_total") >= len(sent), \
            m.select("promrelay_received_samples_total")
        # Nothing was sent upstream from the rejected requests.
        assert m.sum("promrelay_sent_samples_total") == len(sent)
        assert not any(re.match(r"e2e_bad", dict(k)["__name__"]) for k in received())


if __name__ == "__main__":
    harness.main(test_bad_requests)
