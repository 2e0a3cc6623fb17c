#!/usr/bin/env python3
"""The benchmark's checks must be able to fail. Two runs of compare.py, each
with one fault, each required to exit 1 and name it:
  1. vmagent with the GDPR labeldrop left out of the platform rules: the
     leak and the fingerprint mismatch are reported;
  2. promrelay refusing every request (server.max_series_per_request below
     the 2000 series a request carries): the request errors are reported.
Usage: compare_selftest.py BUILD_DIR"""
import io
import os
import shutil
import sys
import tempfile
from contextlib import redirect_stdout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import compare  # noqa: E402

build_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
original = compare.write_configs


def without_labeldrop(workdir, sink, port, args):
    cfg, platform_rules, customer_rules = original(workdir, sink, port, args)
    with open(platform_rules, "w") as f:
        f.write(f"- source_labels: [job]\n  regex: {compare.PLATFORM_JOBS}\n"
                "  action: keep\n")
    return cfg, platform_rules, customer_rules


def refusing_every_request(workdir, sink, port, args):
    cfg, platform_rules, customer_rules = original(workdir, sink, port, args)
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write(text.replace("server:\n",
                             "server:\n  max_series_per_request: 1000\n", 1))
    return cfg, platform_rules, customer_rules


def run(write_configs, only):
    """compare.py --quick on `only` with `write_configs`: (exit code, text)."""
    compare.write_configs = write_configs
    out = tempfile.mkdtemp(prefix="bench-selftest-")
    sys.argv = ["compare.py", "--quick", "--duration", "1", "--only", only,
                "--build-dir", build_dir, "--out", out]
    buf = io.StringIO()
    try:
        with redirect_stdout(buf):
            rc = compare.main()
    finally:
        compare.kill_all()
        shutil.rmtree(out, ignore_errors=True)
    text = buf.getvalue()
    print(text)
    return rc, text


failed = []
rc, text = run(without_labeldrop, "vmagent")
if rc == 1 and "still carried a tenant label" in text and \
        "fingerprint mismatch" in text and "customer sink" not in text:
    print("selftest: the delivery check caught the leak")
else:
    failed.append(f"leak: exit {rc}, expected 1 with the leak reported")

promrelay = os.path.join(build_dir, "promrelay")
if os.path.exists(promrelay):
    rc, text = run(refusing_every_request, "promrelay")
    if rc == 1 and "request errors" in text and "HTTP 413" in text:
        print("selftest: the request-error check caught the refusals")
    else:
        failed.append(f"request errors: exit {rc}, expected 1 with the "
                      "413s reported")
else:
    print(f"selftest: {promrelay} not built, request-error case skipped")

for f in failed:
    print(f"selftest: FAILED: {f}")
sys.exit(1 if failed else 0)
