#!/usr/bin/env python3
"""A deliberately small stand-in for promrelay, used ONLY to check the e2e
tests themselves (that they pass against something that follows DESIGN.md,
and fail against something that does not) while the real binary is being
built. It is not promrelay and is never shipped or run by CTest.

    PROMRELAY_BIN=tests/e2e/tools/mock_promrelay.py python3 tests/e2e/test_x.py

Reads the JSON-flavoured YAML the harness writes. Supports: RW1 ingest with
the DESIGN.md status codes, write_relabel_configs keep/drop/labeldrop,
forbidden_labels, basic_auth password_file, tls_config.ca_file, retries with
backoff on network errors/5xx/429, 4xx drops, and the self-metrics the tests
read. MOCK_BREAK=<name> switches on a known bug so a test can be seen failing.
"""

import base64
import http.server
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rw  # noqa: E402

BREAK = os.environ.get("MOCK_BREAK", "")
DECOMPRESSED_CAP = 128 << 20


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}

    def inc(self, name, labels=(), by=1):
        with self.lock:
            key = (name, tuple(sorted(labels)))
            self.values[key] = self.values.get(key, 0) + by

    def text(self):
        with self.lock:
            lines = []
            for (name, labels), v in sorted(self.values.items()):
                ls = ",".join('%s="%s"' % kv for kv in labels)
                lines.append("%s{%s} %s" % (name, ls, v) if ls else "%s %s" % (name, v))
            return "\n".join(lines) + "\n"


M = Counters()


def apply_rules(rules, labels):
    labels = dict(labels)
    for r in rules:
        action = r.get("action", "replace")
        regex = re.compile("(?:%s)" % r.get("regex", "(.*)"))
        if action in ("keep", "drop"):
            value = r.get("separator", ";").join(labels.get(s, "") for s in r["source_labels"])
            matched = regex.fullmatch(value) is not None
            if matched != (action == "keep"):
                return None
        elif action == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.fullmatch(k)}
        else:
            raise SystemExit("mock: unsupported action " + action)
    return labels


def duration(s):
    units = {"ms": 0.001, "s": 1, "m": 60}
    m = re.fullmatch(r"(\d+)(ms|s|m)", s)
    return int(m.group(1)) * units[m.group(2)]


class Destination:
    def __init__(self, cfg):
        self.name = cfg["name"]
        self.url = cfg["url"]
        self.rules = cfg.get("write_relabel_configs", [])
        self.forbidden = set(cfg.get("forbidden_labels", []))
        qc = cfg.get("queue_config", {})
        self.min_backoff = duration(qc.get("min_backoff", "30ms"))
        self.max_backoff = duration(qc.get("max_backoff", "5s"))
        self.max_samples = qc.get("max_samples_per_send", 2000)
        self.headers = dict(rw.RW1_HEADERS)
        ba = cfg.get("basic_auth")
        if ba:
            with open(ba["password_file"]) as f:
                pw = f.read().strip()
            tok = base64.b64encode(("%s:%s" % (ba["username"], pw)).encode()).decode()
            self.headers["Authorization"] = "Basic " + tok
        self.ctx = None
        tls = cfg.get("tls_config")
        if tls and tls.get("ca_file"):
            self.ctx = ssl.create_default_context(cafile=tls["ca_file"])
        self.queue = []
        self.cv = threading.Condition()
        threading.Thread(target=self.run, daemon=True).start()

    def enqueue(self, series):
        with self.cv:
            self.queue.append(series)
            self.cv.notify()

    def run(self):
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                batch = []
                while self.queue and sum(len(s) for _, s in batch) < self.max_samples:
                    batch += self.queue.pop(0)
            self.send(batch)

    def send(self, batch):
        n = rw.count_samples(batch)
        body = rw.rw1_body(batch)
        backoff = self.min_backoff
        while True:
            code = None
            try:
                req = urllib.request.Request(self.url, data=body, headers=self.headers,
                                             method="POST")
                with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                    code = r.status
            except urllib.error.HTTPError as e:
                code = e.code
            except OSError:
                code = None
            if code is not None and code // 100 == 2:
                M.inc("promrelay_sent_samples_total", [("destination", self.name)], n)
                return
            retry = code is None or code >= 500 or code == 429 or BREAK == "retry_4xx"
            if not retry:
                M.inc("promrelay_dropped_samples_total",
                      [("destination", self.name), ("reason", "http_%d" % code)], n)
                return
            M.inc("promrelay_send_retries_total", [("destination", self.name)])
            time.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)


class Relay:
    def __init__(self, cfg):
        srv = cfg["server"]
        self.max_request = srv.get("max_request_bytes", 32 << 20)
        self.destinations = [Destination(d) for d in cfg["remote_write"]]

    def handle(self, body, content_type, encoding):
        if content_type != rw.RW1_CONTENT_TYPE:
            return 415, "unsupported content type %r" % content_type
        if encoding not in ("", "snappy"):
            return 415, "unsupported content encoding %r" % encoding
        try:
            raw = rw.snappy_decompress(body, max_len=DECOMPRESSED_CAP)
        except ValueError as e:
            if "declared length" in str(e):
                return 413, "decompressed body over %d bytes" % DECOMPRESSED_CAP
            return 400, "snappy: %s" % e
        try:
            series = rw.decode_write_request(raw) if raw else None
        except (ValueError, UnicodeDecodeError) as e:
            return 400, "protobuf: %s" % e
        if series is None:
            return 400, "empty body"
        for labels, _ in series:
            if len(labels) > 256:
                return 400, "series has %d labels, over max_labels_per_series" % len(labels)
            if any(len(v) > 16384 for v in labels.values()):
                return 400, "label value over max_label_value_length"
        M.inc("promrelay_received_samples_total", by=rw.count_samples(series))
        for d in self.destinations:
            share = []
            for labels, samples in series:
                out = apply_rules(d.rules, labels)
                if out is None:
                    M.inc("promrelay_relabel_dropped_series_total", [("destination", d.name)])
                    continue
                if BREAK != "no_guard" and d.forbidden & set(out):
                    M.inc("promrelay_forbidden_label_violations_total",
                          [("destination", d.name)])
                    M.inc("promrelay_dropped_samples_total",
                          [("destination", d.name), ("reason", "forbidden_label")],
                          len(samples))
                    continue
                share.append((out, samples))
            if share:
                d.enqueue(share)
        return 204, ""


def main():
    args = sys.argv[1:]
    text = open(args[args.index("--config") + 1]).read()
    text = re.sub(r"\$\{(\w+)\}", lambda m: os.environ[m.group(1)], text)
    cfg = json.loads(text)
    if BREAK == "leak":
        for d in cfg["remote_write"]:
            d["write_relabel_configs"] = [r for r in d.get("write_relabel_configs", [])
                                          if r.get("action") != "labeldrop"]
            d["forbidden_labels"] = []
    relay = Relay(cfg)
    host, port = cfg["server"]["listen_address"].rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, text, ctype="text/plain"):
            data = text.encode()
            M.inc("promrelay_requests_total", [("code", str(code))])
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path in ("/-/ready", "/-/healthy"):
                self.reply(200, "ok\n")
            elif self.path == "/metrics":
                self.reply(200, M.text())
            elif self.path in ("/api/v1/write", "/api/v1/push", "/api/prom/push"):
                self.reply(405, "use POST\n")
            else:
                self.reply(404, "not found\n")

        def do_POST(self):  # noqa: N802
            if self.path not in ("/api/v1/write", "/api/v1/push", "/api/prom/push"):
                self.close_connection = True
                return self.reply(404, "not found\n")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
                    if len(body) > relay.max_request:
                        self.close_connection = True
                        return self.reply(413, "body over max_request_bytes\n")
            else:
                n = int(self.headers.get("Content-Length") or 0)
                if n > relay.max_request:
                    self.close_connection = True
                    return self.reply(413, "body over max_request_bytes\n")
                body = self.rfile.read(n)
            code, msg = relay.handle(body, self.headers.get("Content-Type", ""),
                                     self.headers.get("Content-Encoding", ""))
            self.reply(code, msg + "\n" if msg else "")

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("mock promrelay listening on %s" % cfg["server"]["listen_address"], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
