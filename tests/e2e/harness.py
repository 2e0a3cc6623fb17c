"""End-to-end harness: real promrelay, VictoriaMetrics, Prometheus and vmagent
processes on 127.0.0.1 ports chosen at run time (stdlib only).

    with harness.Env("split") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver()
        relay = env.start_promrelay(harness.relay_config(env, [...]))
        ...

Env owns a temp dir and every process it starts. On leaving the `with`
block everything is stopped and the dir removed; if the block raised, each
process's log is printed first (E2E_KEEP=1 keeps the dir, E2E_VERBOSE=1
prints logs always). Children get PR_SET_PDEATHSIG so a harness killed by a
CTest timeout takes its processes with it.
"""

import base64
import contextlib
import ctypes
import ctypes.util
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rw  # noqa: E402

SOURCE_DIR = os.environ.get(
    "PROMRELAY_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

VERBOSE = os.environ.get("E2E_VERBOSE") == "1"


def log(msg):
    sys.stderr.write("[e2e %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class E2EError(Exception):
    pass


class Skip(Exception):
    """Raised when a prerequisite is missing; tests exit with SKIP_CODE."""


SKIP_CODE = 77


# ---------------------------------------------------------------- binaries


def find_binary(name):
    path = shutil.which(name)
    if not path:
        raise E2EError("%s not found: run `bash scripts/install-deps.sh`" % name)
    return path


def promrelay_binary():
    """$PROMRELAY_BIN, else $PROMRELAY_BINARY_DIR/promrelay, else build/promrelay."""
    candidates = []
    if os.environ.get("PROMRELAY_BIN"):
        candidates.append(os.environ["PROMRELAY_BIN"])
    if os.environ.get("PROMRELAY_BINARY_DIR"):
        candidates.append(os.path.join(os.environ["PROMRELAY_BINARY_DIR"], "promrelay"))
    candidates.append(os.path.join(SOURCE_DIR, "build", "promrelay"))
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise E2EError("promrelay binary not found (tried %s); build it with "
                   "`bash scripts/build.sh promrelay`" % ", ".join(candidates))


# ---------------------------------------------------------------- ports


_ports_lock = threading.Lock()
_ports_given = set()


def free_port():
    """A port on 127.0.0.1 that was free a moment ago (never the same twice
    in one harness run, so two services started close together can't clash)."""
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise E2EError("no free port")


def port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------- HTTP


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:200])


def http_request(url, method="GET", body=None, headers=None, ssl_context=None,
                 auth=None, timeout=10):
    """One HTTP request; returns Response for every status (no exceptions for
    4xx/5xx). Connection errors raise OSError."""
    headers = dict(headers or {})
    if auth:
        token = base64.b64encode(("%s:%s" % auth).encode()).decode()
        headers["Authorization"] = "Basic " + token
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ssl_context) as r:
            return Response(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read(), dict(e.headers or {}))


def raw_http(port, method, path, headers, body=b"", chunked=False, timeout=30):
    """HTTP/1.1 over a plain socket, for requests a server may answer before
    reading them in full (a 413 for a huge body): stops sending when the
    peer closes and still reads its response. Returns Response."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port,
                "Connection: close"]
        for k, v in headers.items():
            head.append("%s: %s" % (k, v))
        if chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append("Content-Length: %d" % len(body))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            step = 64 * 1024
            for i in range(0, len(body), step):
                part = body[i:i + step]
                if chunked:
                    part = b"%x\r\n" % len(part) + part + b"\r\n"
                sock.sendall(part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; read what it said
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    finally:
        sock.close()
    if not data:
        raise E2EError("%s %s: connection closed without a response" % (method, path))
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip()] = v.strip()
    if hdrs.get("Transfer-Encoding", hdrs.get("transfer-encoding", "")).lower() == "chunked":
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        rest = out
    return Response(status, rest, hdrs)


def http_ok(url, **kw):
    try:
        return http_request(url, timeout=2, **kw).status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_for(predicate, timeout, interval=0.2, what="condition"):
    """Polls predicate() until it returns a truthy value; returns it."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last
            last_exc = e
        if time.monotonic() > deadline:
            raise E2EError("timed out after %.0fs waiting for %s%s" % (
                timeout, what, (": last error %r" % last_exc) if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------- processes


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_PR_SET_PDEATHSIG = 1


_SETPRIV = shutil.which("setpriv")


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """A child process with its output in <dir>/<name>.log (appended across
    restarts)."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc = None
        self.starts = 0

    def start(self):
        if self.running():
            raise E2EError("%s already running" % self.name)
        with open(self.log_path, "ab") as f:
            f.write(("\n===== start #%d: %s\n" % (self.starts + 1, " ".join(self.argv))).encode())
            f.flush()
            env = None
            if self.env is not None:
                env = dict(os.environ)
                env.update(self.env)
            # setpriv (util-linux, always on Debian) sets the death signal
            # and execs: no Python code runs between fork and exec, which
            # preexec_fn would do (unsafe with the harness's threads).
            if _SETPRIV:
                argv = [_SETPRIV, "--pdeathsig", "KILL", "--"] + self.argv
                kw = {}
            else:
                argv, kw = self.argv, {"preexec_fn": _die_with_parent}
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                env=env, cwd=self.cwd, **kw)
        self.starts += 1
        if VERBOSE:
            log("started %s pid %d" % (self.name, self.proc.pid))
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check, timeout=60, what=None):
        def ready():
            if self.proc.poll() is not None:
                raise ProcessDied(self, "exited with %s while starting" % self.proc.returncode)
            return check()

        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():
                    return self
            except ProcessDied:
                raise
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            if time.monotonic() > deadline:
                raise ProcessDied(self, "not ready after %.0fs (%s)" % (timeout, what or "readiness"))
            time.sleep(0.1)

    def send_signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=20, sig=signal.SIGTERM):
        """Signals the process, waits, SIGKILLs after timeout. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log("%s ignored signal %d for %ds; killing" % (self.name, sig, timeout))
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def kill(self):
        return self.stop(timeout=10, sig=signal.SIGKILL)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])


class ProcessDied(E2EError):
    def __init__(self, process, msg):
        super().__init__("%s %s; log tail:\n%s" % (process.name, msg, process.log_tail()))


# ---------------------------------------------------------------- TLS and auth


def make_tls(directory, hosts=("localhost",), ips=("127.0.0.1",)):
    """A throwaway CA and a server certificate signed by it (openssl CLI).
    Returns dict(ca=..., cert=..., key=...) paths."""
    os.makedirs(directory, exist_ok=True)
    p = lambda n: os.path.join(directory, n)  # noqa: E731

    def run(*args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, cwd=directory)
        if r.returncode != 0:
            raise E2EError("openssl %s failed: %s" % (args[0], r.stderr.decode()))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "3",
        "-subj", "/CN=promrelay e2e test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", p("server.key"), "-out", p("server.csr"),
        "-subj", "/CN=%s" % hosts[0])
    san = ",".join(["DNS:" + h for h in hosts] + ["IP:" + i for i in ips])
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n" % san)
    run("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-out", p("server.crt"), "-days", "3", "-extfile", p("server.ext"))
    return {"ca": p("ca.crt"), "cert": p("server.crt"), "key": p("server.key")}


def bcrypt_hash(password, cost=4):
    """bcrypt ($2b$) hash for Prometheus' web config. Uses libcrypt (libxcrypt,
    part of every Debian system) and falls back to `htpasswd -nbB`. Cost 4
    (the minimum) keeps Prometheus' per-request check cheap in tests."""
    try:
        lib = ctypes.CDLL("libcrypt.so.1")
        lib.crypt_gensalt.restype = ctypes.c_char_p
        lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                      ctypes.c_int]
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        salt = lib.crypt_gensalt(b"$2b$", cost, None, 0)
        if salt:
            h = lib.crypt(password.encode(), salt)
            if h and h.startswith(b"$2b$"):
                return h.decode()
    except OSError:
        pass
    if shutil.which("htpasswd"):
        r = subprocess.run(["htpasswd", "-nbB", "-C", str(cost), "u", password],
                           capture_output=True, check=True)
        return r.stdout.decode().strip().split(":", 1)[1]
    raise E2EError("no bcrypt implementation (libcrypt.so.1 or htpasswd)")


# ---------------------------------------------------------------- metrics text


_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_metrics(text):
    """Prometheus text exposition -> [(name, {labels}, value)]."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise E2EError("unparseable metrics line: %r" % line)
        labels = {}
        if m.group(3):
            pos = 0
            body = m.group(3)
            while pos < len(body):
                lm = _LABEL_RE.match(body, pos)
                if not lm:
                    raise E2EError("unparseable labels in %r" % line)
                labels[lm.group(1)] = bytes(lm.group(2), "utf-8").decode("unicode_escape")
                pos = lm.end()
        out.append((m.group(1), labels, float(m.group(4))))
    return out


class Metrics:
    """A /metrics snapshot with sum-by-selector lookups."""

    def __init__(self, text):
        self.text = text
        self.samples = parse_metrics(text)

    def select(self, name, **matchers):
        """Samples of `name` whose labels match; a matcher value is an exact
        string, or a compiled regex (fully anchored)."""
        res = []
        for n, labels, v in self.samples:
            if n != name:
                continue
            ok = True
            for k, want in matchers.items():
                got = labels.get(k, "")
                if isinstance(want, re.Pattern):
                    ok = want.fullmatch(got) is not None
                else:
                    ok = got == want
                if not ok:
                    break
            if ok:
                res.append((labels, v))
        return res

    def sum(self, name, **matchers):
        return sum(v for _, v in self.select(name, **matchers))

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def names(self):
        return sorted({n for n, _, _ in self.samples})


# ---------------------------------------------------------------- sinks


def _series_dict(items, dedup=True):
    """[(labels, [(ts, v)])] -> {frozenset(labels): sorted [(ts, v)]}, merged."""
    out = {}
    for labels, samples in items:
        key = frozenset(labels.items())
        out.setdefault(key, []).extend(samples)
    for k in out:
        out[k] = sorted(set(out[k])) if dedup else sorted(out[k])
    return out


def count(series_dict):
    return sum(len(v) for v in series_dict.values())


def describe(key):
    d = dict(key)
    name = d.pop("__name__", "")
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(d.items())))


def diff_series(actual, expected, limit=8):
    """'' when equal, else a readable account of what differs."""
    if actual == expected:
        return ""
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    wrong = [k for k in expected if k in actual and actual[k] != expected[k]]
    out = ["series: %d expected, %d present; samples: %d expected, %d present" % (
        len(expected), len(actual), count(expected), count(actual))]
    for title, keys in (("missing", missing), ("unexpected", extra)):
        if keys:
            out.append("%d %s series, e.g.:" % (len(keys), title))
            out += ["  " + describe(k) for k in keys[:limit]]
    if wrong:
        out.append("%d series with different samples, e.g.:" % len(wrong))
        for k in wrong[:limit]:
            out.append("  %s: expected %d samples %s, got %d %s" % (
                describe(k), len(expected[k]), expected[k][:4], len(actual[k]), actual[k][:4]))
    return "\n".join(out)


def wait_for_series(sink_export, expected, timeout, what):
    """Polls sink_export() until it equals expected; raises with a diff."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = sink_export()
            if last == expected:
                return last
        except (OSError, E2EError) as e:
            last = e
        if time.monotonic() > deadline:
            detail = diff_series(last, expected) if isinstance(last, dict) else repr(last)
            raise E2EError("%s: not as expected after %.0fs:\n%s" % (what, timeout, detail))
        time.sleep(0.5)


class VictoriaMetrics:
    def __init__(self, env, name, port=None, data_dir=None, extra_args=()):
        self.env = env
        self.name = name
        self.port = port or free_port()
        self.data_dir = data_dir or env.path(name + "-data")
        self.base = "http://127.0.0.1:%d" % self.port
        argv = [find_binary("victoria-metrics"),
                "-httpListenAddr=127.0.0.1:%d" % self.port,
                "-storageDataPath=" + self.data_dir,
                "-retentionPeriod=100y",
                # Queries must see what was just written, not 30s later.
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-search.maxStalenessInterval=1h",
                "-loggerLevel=WARN",
                "-http.shutdownDelay=0s"] + list(extra_args)
        self.process = Process(name, argv, env.path(name + ".log"))
        env.track(self.process)

    @property
    def write_url(self):
        return self.base + "/api/v1/write"

    def start(self, timeout=60):
        self.process.start()
        self.process.wait_ready(lambda: http_ok(self.base + "/health"), timeout,
                                what="GET /health")
        return self

    def stop(self):
        return self.process.stop()

    def flush(self):
        http_request(self.base + "/internal/force_flush")

    def api(self, path, **params):
        self.flush()
        r = http_request(self.base + path + "?" + urllib.parse.urlencode(params, doseq=True),
                         timeout=30)
        if r.status != 200:
            raise E2EError("%s%s -> %r" % (self.name, path, r))
        return r

    def query(self, q, time_s=None):
        params = {"query": q}
        if time_s is not None:
            params["time"] = "%.3f" % time_s
        return self.api("/api/v1/query", **params).json()["data"]["result"]

    def series(self, match='{__name__=~".+"}'):
        return self.api("/api/v1/series", **{"match[]": match, "start": "0"}).json()["data"]

    def export(self, match='{__name__=~".+"}', dedup=True):
        """Raw samples: {frozenset(labels): [(ts_ms, value)]} (no staleness
        markers). dedup=False keeps duplicate samples, which VictoriaMetrics
        stores as they come (no -dedup flag): a sample sent twice shows."""
        r = self.api("/api/v1/export", **{"match[]": match})
        items = []
        for line in r.text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            samples = [(int(t), float(v)) for t, v in zip(row["timestamps"], row["values"])
                       if v is not None and v == v]
            items.append((row["metric"], samples))
        return _series_dict(items, dedup=dedup)


class PrometheusReceiver:
    """Prometheus 2.42 as a remote-write sink behind TLS + basic auth: the
    stand-in for Grafana Cloud."""

    def __init__(self, env, name, username="platform", password="s3cret-platform",
                 tls=True, auth=True):
        self.env = env
        self.name = name
        self.port = free_port()
        self.username = username
        self.password = password
        self.tls = make_tls(env.path(name + "-tls")) if tls else None
        scheme = "https" if tls else "http"
        self.base = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.ssl_context = None
        if tls:
            self.ssl_context = ssl.create_default_context(cafile=self.tls["ca"])
        self.auth = (username, password) if auth else None
        config = env.write(name + "/prometheus.yml",
                           "global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        web = ""
        if tls:
            web += "tls_server_config:\n  cert_file: %s\n  key_file: %s\n" % (
                self.tls["cert"], self.tls["key"])
        if auth:
            web += "basic_auth_users:\n  %s: '%s'\n" % (username, bcrypt_hash(password))
        args = [find_binary("prometheus"),
                "--config.file=" + config,
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--storage.tsdb.path=" + env.path(name + "-data"),
                "--storage.tsdb.retention.time=1d",
                "--web.enable-remote-write-receiver",
                "--log.level=warn"]
        if web:
            args.append("--web.config.file=" + env.write(name + "/web.yml", web))
        self.process = Process(name, args, env.path(name + ".log"))
        env.track(self.process)

    @property
    def write_url(self):
        return self.base + "/api/v1/write"

    def start(self, timeout=60):
        self.process.start()
        self.process.wait_ready(
            lambda: http_ok(self.base + "/-/ready", ssl_context=self.ssl_context, auth=self.auth),
            timeout, what="GET /-/ready over TLS with basic auth")
        return self

    def stop(self):
        return self.process.stop()

    def get(self, path, auth="default", **params):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        return http_request(url, ssl_context=self.ssl_context,
                            auth=self.auth if auth == "default" else auth, timeout=30)

    def api(self, path, **params):
        r = self.get(path, **params)
        if r.status != 200:
            raise E2EError("%s%s -> %r" % (self.name, path, r))
        return r

    def query(self, q, time_s=None):
        params = {"query": q}
        if time_s is not None:
            params["time"] = "%.3f" % time_s
        return self.api("/api/v1/query", **params).json()["data"]["result"]

    def series(self, match='{__name__=~".+"}'):
        return self.api("/api/v1/series", **{"match[]": match, "start": "0"}).json()["data"]

    def export(self, match='{__name__=~".+"}', window="2h", time_s=None):
        """Raw samples via a range-vector query: {frozenset(labels): [(ts_ms, v)]}."""
        result = self.query("%s[%s]" % (match, window), time_s)
        items = []
        for row in result:
            samples = [(int(round(float(t) * 1000)), float(v)) for t, v in row["values"]]
            items.append((row["metric"], samples))
        return _series_dict(items)


class VMAgent:
    def __init__(self, env, name, remote_write_urls, scrape_config=None, extra_args=(),
                 queues=1, scrape_config_file=None, extra_env=None):
        self.env = env
        self.name = name
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.tmp = env.path(name + "-queue")
        args = [find_binary("vmagent"),
                "-httpListenAddr=127.0.0.1:%d" % self.port,
                "-remoteWrite.tmpDataPath=" + self.tmp,
                "-remoteWrite.flushInterval=200ms",
                # vmagent's default of 2 x cores concurrent senders can put
                # a series' samples out of order across requests, and
                # Prometheus-compatible sinks reject that with a 400: one
                # queue keeps the order the tests' exact checks rely on.
                "-remoteWrite.queues=%d" % queues,
                "-loggerLevel=WARN",
                "-http.shutdownDelay=0s"]
        for url in remote_write_urls:
            args.append("-remoteWrite.url=" + url)
        if scrape_config is not None:
            path = env.write(name + "/scrape.yml", json.dumps(scrape_config, indent=2))
            args.append("-promscrape.config=" + path)
        if scrape_config_file:
            args.append("-promscrape.config=" + scrape_config_file)
        args += list(extra_args)
        self.process = Process(name, args, env.path(name + ".log"), env=extra_env)
        env.track(self.process)

    def start(self, timeout=60):
        self.process.start()
        self.process.wait_ready(lambda: http_ok(self.base + "/health"), timeout,
                                what="GET /health")
        return self

    def stop(self):
        return self.process.stop()

    def import_prometheus(self, text):
        r = http_request(self.base + "/api/v1/import/prometheus", method="POST",
                         body=text.encode(), headers={"Content-Type": "text/plain"})
        if r.status // 100 != 2:
            raise E2EError("vmagent import -> %r" % r)

    def metrics(self):
        return Metrics(http_request(self.base + "/metrics").text)

    def pending_bytes(self):
        """Bytes vmagent still holds for its remote-write destinations."""
        m = self.metrics()
        return m.sum("vm_persistentqueue_bytes_pending")


class PrometheusAgent:
    """A real Prometheus scraping targets and remote-writing them."""

    def __init__(self, env, name, remote_write_url, scrape_configs, scrape_interval="1s"):
        self.env = env
        self.name = name
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        config = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval},
            "scrape_configs": scrape_configs,
            "remote_write": [{
                "url": remote_write_url,
                "queue_config": {"batch_send_deadline": "500ms", "min_backoff": "50ms",
                                 "max_backoff": "1s"},
            }],
        }
        path = env.write(name + "/prometheus.yml", json.dumps(config, indent=2))
        args = [find_binary("prometheus"),
                "--config.file=" + path,
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--storage.tsdb.path=" + env.path(name + "-data"),
                "--log.level=warn"]
        self.process = Process(name, args, env.path(name + ".log"))
        env.track(self.process)

    def start(self, timeout=60):
        self.process.start()
        self.process.wait_ready(lambda: http_ok(self.base + "/-/ready"), timeout,
                                what="GET /-/ready")
        return self

    def stop(self):
        return self.process.stop()

    def query(self, q, time_s=None):
        params = {"query": q}
        if time_s is not None:
            params["time"] = "%.3f" % time_s
        r = http_request(self.base + "/api/v1/query?" + urllib.parse.urlencode(params),
                         timeout=30)
        if r.status != 200:
            raise E2EError("%s query -> %r" % (self.name, r))
        return r.json()["data"]["result"]

    def export(self, match, window, time_s):
        items = []
        for row in self.query("%s[%s]" % (match, window), time_s):
            items.append((row["metric"],
                          [(int(round(float(t) * 1000)), float(v)) for t, v in row["values"]]))
        return _series_dict(items)

    def metrics(self):
        return Metrics(http_request(self.base + "/metrics").text)


class Promrelay:
    """promrelay --config FILE. `config` is a dict written as FILE, or None
    with config_path naming an existing file (then give port; extra_env
    feeds its ${VAR} references)."""

    def __init__(self, env, name, config, binary=None, port=None, config_path=None,
                 extra_env=None):
        self.env = env
        self.name = name
        self.binary = binary or promrelay_binary()
        self.config = config
        self.port = port or _port_of(config["server"]["listen_address"])
        self.base = "http://127.0.0.1:%d" % self.port
        if config is not None:
            self.config_path = env.path(name + ".yaml")
            self.write_config(config)
        else:
            self.config_path = config_path
        self.process = Process(name, [self.binary, "--config", self.config_path],
                               env.path(name + ".log"), env=extra_env)
        env.track(self.process)

    def write_config(self, config):
        self.config = config
        # YAML is a superset of JSON: no YAML library needed.
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")

    @property
    def write_url(self):
        return self.base + "/api/v1/write"

    def start(self, timeout=30):
        self.process.start()
        self.process.wait_ready(lambda: http_ok(self.base + "/-/ready"), timeout,
                                what="GET /-/ready")
        return self

    def stop(self, timeout=30):
        return self.process.stop(timeout=timeout)

    def kill9(self):
        return self.process.kill()

    def push(self, series=None, body=None, headers=None, path="/api/v1/write", timeout=30):
        """POSTs an RW1 request (built from series unless body is given)."""
        if body is None:
            body = rw.rw1_body(series)
        h = dict(rw.RW1_HEADERS)
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        return http_request(self.base + path, method="POST", body=body, headers=h,
                            timeout=timeout)

    def metrics(self):
        r = http_request(self.base + "/metrics")
        if r.status != 200:
            raise E2EError("promrelay /metrics -> %r" % r)
        return Metrics(r.text)


def _port_of(addr):
    return int(addr.rsplit(":", 1)[1])


# ---------------------------------------------------------------- in-process servers


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-response (an agent being stopped) is
        # not a test failure; anything else still gets printed.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class MetricsServer:
    """Serves /metrics/<job> as Prometheus text for agents to scrape. The
    content comes from a callback (job -> text), so tests control it."""

    def __init__(self, render):
        self.render = render
        self.port = free_port()
        self.scrapes = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                job = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                body = outer.render(job)
                if body is None:
                    self.send_error(404)
                    return
                outer.scrapes[job] = outer.scrapes.get(job, 0) + 1
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class RecordingSink:
    """A remote-write sink in the harness: records every request (method,
    path, headers, decoded series) and answers with `status` (or what
    respond(request) returns). Optional TLS and basic auth like a real sink."""

    def __init__(self, status=204, tls=None, auth=None, respond=None):
        self.status = status
        self.auth = auth
        self.respond = respond
        self.requests = []
        self.lock = threading.Lock()
        self.port = free_port()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                entry = {"path": self.path, "headers": dict(self.headers), "body": body,
                         "time": time.time(), "series": None}
                try:
                    entry["series"] = rw.decode_write_request(rw.snappy_decompress(body))
                except Exception as e:  # noqa: BLE001 - recorded for the test to see
                    entry["error"] = repr(e)
                status = outer.status
                if outer.auth:
                    token = base64.b64encode(("%s:%s" % outer.auth).encode()).decode()
                    if self.headers.get("Authorization") != "Basic " + token:
                        status = 401
                if outer.respond:
                    status = outer.respond(entry) or status
                entry["status"] = status
                with outer.lock:
                    outer.requests.append(entry)
                msg = b"" if status == 204 else b"recording sink says %d\n" % status
                self.send_response(status)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            def log_message(self, *args):
                pass

        self.httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls["cert"], tls["key"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d/api/v1/write" % (scheme, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def request_count(self):
        with self.lock:
            return len(self.requests)

    def samples(self):
        with self.lock:
            return sum(rw.count_samples(r["series"] or []) for r in self.requests)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- environment


class Env:
    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="promrelay-e2e-%s-" % name)
        self.processes = []
        self.servers = []
        self.t0 = time.monotonic()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, rel, text, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def track(self, process):
        self.processes.append(process)

    def elapsed(self):
        return time.monotonic() - self.t0

    # Component starters (each returns the started component).
    def start_victoria_metrics(self, name="victoria-metrics", **kw):
        return VictoriaMetrics(self, name, **kw).start()

    def start_prometheus_receiver(self, name="platform-prometheus", **kw):
        return PrometheusReceiver(self, name, **kw).start()

    def start_vmagent(self, remote_write_urls, name="vmagent", **kw):
        if isinstance(remote_write_urls, str):
            remote_write_urls = [remote_write_urls]
        return VMAgent(self, name, remote_write_urls, **kw).start()

    def start_prometheus_agent(self, remote_write_url, scrape_configs, name="prometheus-agent",
                               **kw):
        return PrometheusAgent(self, name, remote_write_url, scrape_configs, **kw).start()

    def start_promrelay(self, config, name="promrelay", **kw):
        return Promrelay(self, name, config, **kw).start()

    def start_metrics_server(self, render):
        s = MetricsServer(render)
        self.servers.append(s)
        return s

    def start_recording_sink(self, **kw):
        s = RecordingSink(**kw)
        self.servers.append(s)
        return s

    def dump_logs(self):
        for p in self.processes:
            text = p.log_text()
            sys.stderr.write("\n========== %s (%s) ==========\n" % (p.name, p.log_path))
            lines = text.splitlines()
            if len(lines) > 400:
                sys.stderr.write("... %d earlier lines omitted ...\n" % (len(lines) - 400))
                lines = lines[-400:]
            sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()

    def close(self, failed=False):
        for p in reversed(self.processes):
            try:
                p.stop(timeout=15)
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                log("stopping %s: %r" % (p.name, e))
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        if failed or VERBOSE:
            self.dump_logs()
        if os.environ.get("E2E_KEEP") == "1":
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        self.close(failed=exc_type is not None and not interrupted)
        return False


# ---------------------------------------------------------------- promrelay config


def destination(name, url, jobs_regex=None, keep=True, drop_tenant_labels=False,
                forbidden=None, **extra):
    """One remote_write entry. keep=True keeps only jobs_regex; False drops them."""
    d = {"name": name, "url": url}
    rules = []
    if jobs_regex:
        rules.append({"source_labels": ["job"], "regex": jobs_regex,
                      "action": "keep" if keep else "drop"})
    if drop_tenant_labels:
        rules.append({"regex": "project_id|service_id|workspace_id", "action": "labeldrop"})
    if rules:
        d["write_relabel_configs"] = rules
    if forbidden:
        d["forbidden_labels"] = list(forbidden)
    d.update(extra)
    return d


def relay_config(remote_write, listen_port=None, server=None, **top):
    """A promrelay config dict listening on a fresh port."""
    # A short shutdown_timeout: with a sink down, promrelay would otherwise
    # spend its default 30s trying to flush before the harness moves on.
    srv = {"listen_address": "127.0.0.1:%d" % (listen_port or free_port()),
           "shutdown_timeout": "3s"}
    if server:
        srv.update(server)
    cfg = {"server": srv, "remote_write": remote_write}
    cfg.update(top)
    return cfg


def starform_config(env, platform, customer, platform_password_file=None,
                    queue_config=None, storage=None, server=None):
    """The Starform split (DESIGN.md): platform jobs without tenant labels to
    `platform` (a PrometheusReceiver or RecordingSink), the rest to `customer`."""
    import starform
    qc = {"max_samples_per_send": 500, "batch_send_deadline": "200ms",
          "min_backoff": "50ms", "max_backoff": "1s"}
    if queue_config:
        qc.update(queue_config)
    plat = destination("platform", platform.write_url, starform.PLATFORM_JOB_REGEX, keep=True,
                       drop_tenant_labels=True, forbidden=starform.TENANT_LABELS,
                       queue_config=dict(qc))
    if isinstance(platform, PrometheusReceiver):
        if platform.auth:
            pwfile = platform_password_file or env.write(
                "secrets/platform-password", platform.password, mode=0o600)
            plat["basic_auth"] = {"username": platform.username, "password_file": pwfile}
        if platform.tls:
            plat["tls_config"] = {"ca_file": platform.tls["ca"]}
    cust = destination("customer", customer.write_url, starform.PLATFORM_JOB_REGEX, keep=False,
                       queue_config=dict(qc))
    for d in (plat, cust):
        if storage:
            st = dict(storage)
            st["path"] = env.path("queue", d["name"])
            d["storage"] = st
    return relay_config([plat, cust], server=server)


# ---------------------------------------------------------------- test entry


def main(test_fn):
    """Runs test_fn() as a CTest test: exit 0 on success, 1 on failure, 77
    when a prerequisite is missing. SIGTERM (ctest timeout) cleans up."""
    def on_term(signum, frame):
        raise SystemExit("terminated by signal %d" % signum)

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    name = getattr(test_fn, "__name__", "test")
    try:
        test_fn()
    except Skip as e:
        log("SKIP %s: %s" % (name, e))
        sys.exit(SKIP_CODE)
    except Exception:
        import traceback
        traceback.print_exc()
        log("FAIL %s after %.1fs" % (name, time.monotonic() - t0))
        sys.exit(1)
    log("PASS %s in %.1fs" % (name, time.monotonic() - t0))


# ---------------------------------------------------------------- load and disk queue


class Pusher(threading.Thread):
    """Pushes requests of unique samples to promrelay in a loop (like an
    agent that never resends) and records which ones were acknowledged, so a
    test can demand that every acknowledged sample arrives.

    Request k carries `series` series {__name__=<metric>, job=<job>, s=<i>},
    each with one sample at timestamp base_ms + k and value k."""

    def __init__(self, relay, series=50, interval=0.02, metric="e2e_durable",
                 job="customer-app", base_ms=None, timeout=10):
        super().__init__(daemon=True)
        self.relay = relay
        self.series = series
        self.interval = interval
        self.metric = metric
        self.job = job
        self.base_ms = base_ms if base_ms is not None else (int(time.time()) - 600) * 1000
        self.timeout = timeout
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = []      # request numbers answered 2xx
        self.attempted = []  # every request number sent
        self.statuses = {}   # status (or "error") -> count
        self.latencies = []  # seconds, acknowledged requests

    def labels(self, i):
        return {"__name__": self.metric, "job": self.job, "s": "%d" % i}

    def request(self, k):
        ts = self.base_ms + k
        return [(self.labels(i), [(ts, float(k))]) for i in range(self.series)]

    def run(self):
        k = 0
        while not self.stop_event.is_set():
            body = rw.rw1_body(self.request(k))
            with self.lock:
                self.attempted.append(k)
            t = time.monotonic()
            try:
                status = self.relay.push(body=body, timeout=self.timeout).status
            except (OSError, urllib.error.URLError, http.client.HTTPException):
                status = "error"
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if isinstance(status, int) and status // 100 == 2:
                    self.acked.append(k)
                    self.latencies.append(time.monotonic() - t)
            k += 1
            if status == "error":
                time.sleep(0.05)  # promrelay is restarting
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=self.timeout + 5)

    def expected(self, which="acked"):
        """{series key: [(ts, value)]} of the acknowledged (or attempted) requests."""
        with self.lock:
            ks = list(self.acked if which == "acked" else self.attempted)
        out = {}
        for i in range(self.series):
            out[frozenset(self.labels(i).items())] = sorted(
                (self.base_ms + k, float(k)) for k in ks)
        return out

    def status_summary(self):
        with self.lock:
            return dict(self.statuses)


def missing_samples(have, want):
    """Samples in want that are not in have (both {key: [(ts, v)]})."""
    out = {}
    for k, samples in want.items():
        got = set(have.get(k, ()))
        lost = [s for s in samples if s not in got]
        if lost:
            out[k] = lost
    return out


def unexpected_samples(have, allowed):
    out = {}
    for k, samples in have.items():
        ok = set(allowed.get(k, ()))
        extra = [s for s in samples if s not in ok]
        if extra:
            out[k] = extra
    return out


RECORD_MAGIC = b"PRQ1"  # proxy/queue/disk_queue.h: kRecordMagic 0x31515250, little-endian
RECORD_HEADER = 32


def segment_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith(".seg")]
    return sorted(out)


def segment_records(path):
    """[(header_offset, payload_offset, payload_len, samples, series)] of a
    segment file, following the layout in proxy/queue/disk_queue.h (the
    length word's top bit flags a compressed payload)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    out = []
    pos = data.find(RECORD_MAGIC)
    while 0 <= pos and pos + RECORD_HEADER <= len(data):
        if data[pos:pos + 4] != RECORD_MAGIC:
            pos = data.find(RECORD_MAGIC, pos + 1)
            continue
        length, samples, series = struct.unpack_from("<III", data, pos + 4)
        length &= 0x7FFFFFFF
        if pos + RECORD_HEADER + length > len(data):
            break
        out.append((pos, pos + RECORD_HEADER, length, samples, series))
        pos += RECORD_HEADER + length
    return out


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())
