#!/usr/bin/env python3
"""Config reload: POST /-/reload, SIGHUP and --config-watch-interval, with a
real promrelay in front of a real VictoriaMetrics.

  (a) The destination first drops job=foo; the file is rewritten to keep only
      foo; a push before POST /-/reload still follows the old rules, one
      after it the new ones. VictoriaMetrics ends up with bar only from
      before the reload and foo only from after it, sample for sample.
  (b) An invalid file (bad regex): POST /-/reload answers 500 naming the
      line and field, the old rules keep working, and
      promrelay_config_last_reload_successful is 0.
  (c) SIGHUP with a fixed file: the metric is back to 1, the new rules apply.
  (d) A second promrelay reads its file through a Kubernetes-style ConfigMap
      mount (config.yaml -> ..data/config.yaml, ..data -> ..<version>) with
      --config-watch-interval=1s. Replacing the file (temp file + rename),
      swapping the ..data symlink as kubelet does, a broken file, and putting
      the running content back are each picked up without a signal.

Every push carries its own timestamp, so what arrived at VictoriaMetrics says
which rules applied to it. No timing is asserted: state changes are polled
for with generous bounds.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import time

import harness

DEST = "victoriametrics"
SERIES_PER_JOB = 3
METRIC = "e2e_reload"
QUEUE = {"max_samples_per_send": 500, "batch_send_deadline": "100ms",
         "min_backoff": "50ms", "max_backoff": "1s"}


def rules(action, regex):
    return [{"source_labels": ["job"], "regex": regex, "action": action}]


def config_for(listen_port, vm, action, regex):
    d = harness.destination(DEST, vm.write_url, queue_config=dict(QUEUE))
    d["write_relabel_configs"] = rules(action, regex)
    return harness.relay_config([d], listen_port=listen_port)


def render(cfg):
    # What harness.Promrelay.write_config writes (YAML is a superset of JSON).
    return json.dumps(cfg, indent=2) + "\n"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomically(path, text):
    """Writes a temp file beside `path` and renames it over `path`: the file
    gets a new inode in one step, never a half-written state."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Pushes:
    """Pushes rounds of SERIES_PER_JOB series per job, one timestamp per
    round, and keeps the expected content of VictoriaMetrics."""

    def __init__(self, vm):
        self.vm = vm
        self.t0 = (int(time.time()) - 120) * 1000
        self.round = 0
        self.want = {}
        self.sent = 0  # by the current promrelay process

    def new_relay(self):
        self.sent = 0

    def labels(self, job, i):
        return {"__name__": METRIC, "job": job, "i": str(i)}

    def push(self, relay, kept_jobs, jobs=("foo", "bar")):
        """One round through `relay`; `kept_jobs` are those the rules that
        should be in force keep. Returns the round's timestamp."""
        self.round += 1
        ts = self.t0 + self.round * 1000
        value = float(self.round)
        series = []
        for job in jobs:
            for i in range(SERIES_PER_JOB):
                series.append((self.labels(job, i), [(ts, value)]))
        r = relay.push(series)
        assert r.status == 204, "round %d: push -> %r" % (self.round, r)
        for job in jobs:
            if job not in kept_jobs:
                continue
            for i in range(SERIES_PER_JOB):
                key = frozenset(self.labels(job, i).items())
                self.want.setdefault(key, []).append((ts, value))
                self.want[key].sort()
                self.sent += 1
        return ts

    def check(self, relay, what):
        """Waits until VictoriaMetrics holds exactly what the rules let
        through, and promrelay's sent counter says nothing else was sent."""
        def settled():
            return relay.metrics().sum("promrelay_sent_samples_total",
                                       destination=DEST) >= self.sent

        harness.wait_for(settled, 30, what="promrelay_sent_samples_total >= %d (%s)" % (
            self.sent, what))
        m = relay.metrics()
        got = m.sum("promrelay_sent_samples_total", destination=DEST)
        assert got == self.sent, "%s: promrelay sent %d samples, want %d" % (what, got, self.sent)
        harness.wait_for_series(lambda: self.vm.export('{__name__="%s"}' % METRIC, dedup=False),
                                self.want, 30, "VictoriaMetrics after %s" % what)


def reload_metrics(relay):
    m = relay.metrics()
    return (m.sum("promrelay_config_last_reload_successful"),
            m.sum("promrelay_config_reloads_total", result="success"),
            m.sum("promrelay_config_reloads_total", result="failure"))


def loaded_sha(relay):
    found = relay.metrics().select("promrelay_config_info")
    assert len(found) == 1, "promrelay_config_info: %r" % found
    labels, value = found[0]
    assert value == 1
    return labels["sha256"]


def post_reload(relay):
    return harness.http_request(relay.base + "/-/reload", method="POST", body=b"")


def test_http_and_sighup(env, vm, pushes):
    port = harness.free_port()
    relay = env.start_promrelay(config_for(port, vm, "drop", "foo"), name="promrelay")
    assert reload_metrics(relay) == (1, 0, 0), reload_metrics(relay)
    assert loaded_sha(relay) == sha256(render(relay.config))

    # (a) drop foo -> keep foo.
    pushes.push(relay, kept_jobs={"bar"})
    relay.write_config(config_for(port, vm, "keep", "foo"))
    # The file changed but nobody asked for a reload (no watcher): old rules.
    pushes.push(relay, kept_jobs={"bar"})
    r = post_reload(relay)
    assert r.status == 200, "POST /-/reload -> %r" % r
    pushes.push(relay, kept_jobs={"foo"})
    pushes.push(relay, kept_jobs={"foo"})
    pushes.check(relay, "(a) POST /-/reload")
    assert reload_metrics(relay) == (1, 1, 0), reload_metrics(relay)
    assert loaded_sha(relay) == sha256(render(relay.config))
    m = relay.metrics()
    # Rounds 1-2 dropped foo, rounds 3-4 dropped bar.
    assert m.sum("promrelay_relabel_dropped_series_total", destination=DEST) == \
        4 * SERIES_PER_JOB, m.select("promrelay_relabel_dropped_series_total")
    good_sha = loaded_sha(relay)

    # (b) A bad regex: 500 naming line and field; the old rules keep working.
    bad = config_for(port, vm, "keep", "foo(")
    relay.write_config(bad)
    text = render(bad)
    line = next(n for n, l in enumerate(text.splitlines(), 1) if '"foo("' in l)
    r = post_reload(relay)
    assert r.status == 500, "POST /-/reload with a bad regex -> %r" % r
    field = "remote_write[0].write_relabel_configs[0].regex"
    assert field in r.text, "error does not name the field: %r" % r.text
    assert re.search(r"(^|\D)%d:\d+: " % line, r.text), \
        "error does not name line %d: %r" % (line, r.text)
    assert reload_metrics(relay) == (0, 1, 1), reload_metrics(relay)
    assert loaded_sha(relay) == good_sha  # the running config did not change
    assert harness.http_ok(relay.base + "/-/ready")
    pushes.push(relay, kept_jobs={"foo"})
    pushes.check(relay, "(b) a failed reload")

    # (c) SIGHUP with a fixed file (keep foo and bar).
    relay.write_config(config_for(port, vm, "keep", "foo|bar"))
    relay.process.send_signal(signal.SIGHUP)
    harness.wait_for(lambda: reload_metrics(relay)[0] == 1, 30,
                     what="promrelay_config_last_reload_successful == 1 after SIGHUP")
    assert reload_metrics(relay) == (1, 2, 1), reload_metrics(relay)
    assert loaded_sha(relay) == sha256(render(relay.config))
    pushes.push(relay, kept_jobs={"foo", "bar"})
    pushes.check(relay, "(c) SIGHUP")

    rc = relay.stop()
    assert rc == 0, "promrelay exited with %s on SIGTERM" % rc


class ConfigMapMount:
    """A directory laid out like a kubelet ConfigMap volume:
    config.yaml -> ..data/config.yaml, ..data -> ..<version>/."""

    def __init__(self, root):
        self.root = root
        self.version = 0
        os.makedirs(root)
        self.path = os.path.join(root, "config.yaml")

    def _version_dir(self, text):
        self.version += 1
        d = os.path.join(self.root, "..v%d" % self.version)
        os.makedirs(d)
        with open(os.path.join(d, "config.yaml"), "w") as f:
            f.write(text)
        return d

    def create(self, text):
        d = self._version_dir(text)
        os.symlink(os.path.basename(d), os.path.join(self.root, "..data"))
        os.symlink(os.path.join("..data", "config.yaml"), self.path)

    def swap(self, text):
        """kubelet's update: a new version dir, a temp symlink to it renamed
        over ..data (atomic), then the old dir removed."""
        data = os.path.join(self.root, "..data")
        old = os.path.join(self.root, os.readlink(data))
        d = self._version_dir(text)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(os.path.basename(d), tmp)
        os.replace(tmp, data)
        for f in os.listdir(old):
            os.remove(os.path.join(old, f))
        os.rmdir(old)

    def current_file(self):
        return os.path.realpath(self.path)


def test_watch(env, vm, pushes):
    port = harness.free_port()
    mount = ConfigMapMount(env.path("configmap"))
    first = render(config_for(port, vm, "drop", "foo"))
    mount.create(first)
    relay = harness.Promrelay(env, "promrelay-watch", None, port=port, config_path=mount.path)
    relay.process.argv.append("--config-watch-interval=1s")
    relay.start()
    pushes.new_relay()
    assert loaded_sha(relay) == sha256(first)
    assert reload_metrics(relay) == (1, 0, 0), reload_metrics(relay)
    pushes.push(relay, kept_jobs={"bar"})

    def wait_loaded(text, what):
        harness.wait_for(lambda: loaded_sha(relay) == sha256(text), 30,
                         what="promrelay_config_info to show the %s" % what)
        assert reload_metrics(relay)[0] == 1, reload_metrics(relay)

    # (d1) The file replaced by rename (new inode), inside the current version.
    second = render(config_for(port, vm, "keep", "foo"))
    write_atomically(mount.current_file(), second)
    wait_loaded(second, "renamed-over file")
    pushes.push(relay, kept_jobs={"foo"})
    pushes.check(relay, "(d1) the watcher saw a renamed-over file")
    assert reload_metrics(relay) == (1, 1, 0), reload_metrics(relay)

    # (d2) kubelet's ..data symlink swap.
    third = render(config_for(port, vm, "keep", "bar"))
    mount.swap(third)
    wait_loaded(third, "swapped ConfigMap")
    pushes.push(relay, kept_jobs={"bar"})
    pushes.check(relay, "(d2) the watcher saw a ConfigMap symlink swap")
    assert reload_metrics(relay) == (1, 2, 0), reload_metrics(relay)

    # (d3) A broken file: reported once and the old rules keep working...
    mount.swap(render(config_for(port, vm, "keep", "bar(")))
    harness.wait_for(lambda: reload_metrics(relay)[0] == 0, 30,
                     what="promrelay_config_last_reload_successful == 0 for a broken file")
    assert loaded_sha(relay) == sha256(third)
    pushes.push(relay, kept_jobs={"bar"})
    pushes.check(relay, "(d3) the watcher met a broken file")
    # ...and putting back exactly what runs clears the failure (the content
    # equals the loaded one, so only the failure makes it load again).
    mount.swap(third)
    harness.wait_for(lambda: reload_metrics(relay)[0] == 1, 30,
                     what="promrelay_config_last_reload_successful == 1 after the fix")
    assert loaded_sha(relay) == sha256(third)
    ok, successes, failures = reload_metrics(relay)
    # A failed content is retried at most once a minute, so exactly one
    # failure unless this machine was very slow.
    assert successes == 3 and failures >= 1, reload_metrics(relay)
    pushes.push(relay, kept_jobs={"bar"})
    pushes.check(relay, "(d3) the file was fixed")

    log = relay.process.log_text()
    assert "configuration file changed; reloading" in log
    rc = relay.stop()
    assert rc == 0, "promrelay exited with %s on SIGTERM" % rc


def test_bad_flag():
    binary = harness.promrelay_binary()
    for value, want in (("soon", "not a valid duration"), ("10ms", "at least 1s")):
        r = subprocess.run([binary, "--config", "/nonexistent.yaml",
                            "--config-watch-interval", value],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (value, r.returncode, r.stderr)
        assert "--config-watch-interval" in r.stderr and want in r.stderr, (value, r.stderr)
    r = subprocess.run([binary, "--config", "x", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "--config-watch-interval" in r.stdout, r


def test_sighup_during_shutdown(env):
    """A SIGHUP while promrelay flushes on SIGTERM (a config reloader does
    not know it is stopping) neither reloads nor cuts the flush short: only
    a second SIGTERM/SIGINT does."""
    dead = "http://127.0.0.1:%d/api/v1/write" % harness.free_port()
    relay = env.start_promrelay(harness.relay_config(
        [harness.destination(DEST, dead, queue_config=dict(QUEUE))]),
        name="promrelay-shutdown")
    r = relay.push([({"__name__": METRIC, "job": "foo"}, [(int(time.time() * 1000), 1.0)])])
    assert r.status == 204, r
    relay.process.send_signal(signal.SIGTERM)
    harness.wait_for(lambda: "shutting down" in relay.process.log_text(), 10,
                     what="promrelay shutting down")
    relay.process.send_signal(signal.SIGHUP)
    # The flush to the dead destination lasts shutdown_timeout (3s), then
    # promrelay exits 0; a SIGHUP taken as a second signal would exit 1 now.
    rc = relay.process.proc.wait(timeout=30)
    log = relay.process.log_text()
    assert rc == 0, "exit code %s after SIGTERM + SIGHUP" % rc
    assert "second signal" not in log


def test_reload():
    test_bad_flag()
    with harness.Env("reload") as env:
        vm = env.start_victoria_metrics()
        pushes = Pushes(vm)
        test_http_and_sighup(env, vm, pushes)
        test_watch(env, vm, pushes)
        test_sighup_during_shutdown(env)


if __name__ == "__main__":
    harness.main(test_reload)
