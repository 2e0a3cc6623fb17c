#!/usr/bin/env python3
"""Server TLS certificate renewal without a restart.

promrelay serves TLS from a certificate and key that are replaced in place,
as cert-manager renews a Kubernetes Secret, with --config-watch-interval=1s:

  (a) the renewed pair (another CA) is served to new connections, even though
      the watcher may first see the new key beside the old certificate (the
      key is replaced first), which fails that reload as a whole;
  (b) a broken renewal (a certificate file that is not PEM) fails the reload:
      the current certificate stays in service, POST /-/reload answers 500
      naming server.tls.cert_file, promrelay_config_last_reload_successful
      is 0 and the log says the previous configuration stays;
  (c) a third, good pair is served and brings the metric back to 1.

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

        def metrics(ca):
            ctx = ssl.create_default_context(cafile=ca)
            return harness.Metrics(
                harness.http_request(base + "/metrics", ssl_context=ctx).text)

        def reload_successful(ca):
            return metrics(ca).sum("promrelay_config_last_reload_successful")

        def successful_reloads(ca):
            return metrics(ca).sum("promrelay_config_reloads_total", result="success")

        # (a) renewal, picked up by the watcher alone.
        assert successful_reloads(first["ca"]) == 0
        install(second, live)
        harness.wait_for(lambda: serving(second), 30, what="the renewed certificate")
        assert successful_reloads(second["ca"]) >= 1
        assert reload_successful(second["ca"]) == 1
        push(second, 1)
        harness.log("renewed certificate served after an in-place file swap")

        # (b) a broken renewal keeps the current certificate.
        with open(live["cert"] + ".tmp", "w") as f:
            f.write("not a certificate\n")
        os.replace(live["cert"] + ".tmp", live["cert"])
        harness.wait_for(lambda: reload_successful(second["ca"]) == 0, 30,
                         what="promrelay_config_last_reload_successful 0")
        ctx = ssl.create_default_context(cafile=second["ca"])
        r = harness.http_request(base + "/-/reload", method="POST", ssl_context=ctx)
        assert r.status == 500, r
        assert "server.tls.cert_file" in r.text, r.text
        assert served_certificate(port, second["ca"]) == der_of(second["cert"])
        push(second, 2)
        assert "the previous one stays in use" in relay.process.log_text()

        # (c) a good pair again (a third one): served, metric back to 1.
        third = harness.make_tls(env.path("third"))
        install(third, live)
        harness.wait_for(lambda: serving(third), 30, what="the third certificate")
        harness.wait_for(lambda: reload_successful(third["ca"]) == 1, 30,
                         what="promrelay_config_last_reload_successful back to 1")
        push(third, 3)

        def forwarded():
            ks = set()
            for r in sink.requests:
                for labels, _ in r["series"] or []:
                    ks.add(labels.get("k"))
            return ks
        harness.wait_for(lambda: forwarded() == {"0", "1", "2", "3"}, 30,
                         what="every push forwarded to the sink")


if __name__ == "__main__":
    harness.main(test_server_tls_reload)
