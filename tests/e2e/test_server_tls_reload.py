#!/usr/bin/env python3
"""Server TLS certificate renewal without a restart.

promrelay serves TLS from a certificate and key that are replaced in place,
as cert-manager renews a Kubernetes Secret, with --config-watch-interval=1s:

  (a) the renewed pair (another CA) is served to new connections, even though
      the watcher may first see the new certificate beside the old key;
  (b) a broken renewal (a certificate file that is not PEM) keeps the
      current certificate in service, POST /-/reload answers 500 naming
      server.tls.cert_file, and promrelay_config_last_reload_successful is 0;
  (c) fixing the files brings the metric back to 1.

Remote-write pushes over TLS keep working throughout. Only states are
polled for (generous bounds); no timing is asserted.
"""

import os
import shutil
import socket
import ssl
import time

import harness


def served_certificate(port, ca_file):
    """DER of the certificate a new TLS connection to promrelay shows."""
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


def der_of(cert_file):
    with open(cert_file) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def install(pair, live):
    """Copies a cert/key pair over the live files, key first (each file is
    replaced atomically; the pair is not, as with a Secret update seen
    mid-way)."""
    for what in ("key", "cert"):
        tmp = live[what] + ".tmp"
        shutil.copyfile(pair[what], tmp)
        os.replace(tmp, live[what])


def test_server_tls_reload():
    with harness.Env("server-tls-reload") as env:
        first = harness.make_tls(env.path("first"))
        second = harness.make_tls(env.path("second"))
        os.makedirs(env.path("live"))
        live = {"cert": env.path("live", "tls.crt"), "key": env.path("live", "tls.key")}
        install(first, live)

        sink = env.start_recording_sink()
        config = harness.relay_config(
            [harness.destination("sink", sink.url,
                                 queue_config={"batch_send_deadline": "100ms"})],
            server={"tls": {"cert_file": live["cert"], "key_file": live["key"]}})
        relay = harness.Promrelay(env, "promrelay", config)
        relay.process.argv.append("--config-watch-interval=1s")
        relay.process.start()
        port = relay.port
        base = "https://127.0.0.1:%d" % port

        def serving(pair):
            try:
                return served_certificate(port, pair["ca"]) == der_of(pair["cert"])
            except (OSError, ssl.SSLError):
                return False

        harness.wait_for(lambda: serving(first), 30, what="the first certificate")

        def push(pair, k):
            ctx = ssl.create_default_context(cafile=pair["ca"])
            body = harness.rw.rw1_body([({"__name__": "e2e_tls", "k": str(k)},
                                         [(int(time.time() * 1000), 1.0)])])
            r = harness.http_request(base + "/api/v1/write", method="POST", body=body,
                                     headers=dict(harness.rw.RW1_HEADERS), ssl_context=ctx)
            assert r.status == 204, r
        push(first, 0)

        def reload_successful():
            ctx = ssl.create_default_context(cafile=current["ca"])
            r = harness.http_request(base + "/metrics", ssl_context=ctx)
            return harness.Metrics(r.text).sum("promrelay_config_last_reload_successful")

        # (a) renewal, picked up by the watcher alone.
        install(second, live)
        harness.wait_for(lambda: serving(second), 30, what="the renewed certificate")
        current = second
        harness.wait_for(lambda: reload_successful() == 1, 30,
                         what="promrelay_config_last_reload_successful 1")
        push(second, 1)
        harness.log("renewed certificate served after an in-place file swap")

        # (b) a broken renewal keeps the current certificate.
        with open(live["cert"] + ".tmp", "w") as f:
            f.write("not a certificate\n")
        os.replace(live["cert"] + ".tmp", live["cert"])
        harness.wait_for(lambda: reload_successful() == 0, 30,
                         what="promrelay_config_last_reload_successful 0")
        ctx = ssl.create_default_context(cafile=second["ca"])
        r = harness.http_request(base + "/-/reload", method="POST", ssl_context=ctx)
        assert r.status == 500, r
        assert "server.tls.cert_file" in r.text, r.text
        assert served_certificate(port, second["ca"]) == der_of(second["cert"])
        push(second, 2)
        assert "was not reloaded" in relay.process.log_text()

        # (c) fixed files: back to healthy.
        install(second, live)
        harness.wait_for(lambda: reload_successful() == 1, 30,
                         what="promrelay_config_last_reload_successful back to 1")
        assert served_certificate(port, second["ca"]) == der_of(second["cert"])
        harness.wait_for(lambda: len(sink.requests) > 0, 30, what="pushes forwarded")


if __name__ == "__main__":
    harness.main(test_server_tls_reload)
