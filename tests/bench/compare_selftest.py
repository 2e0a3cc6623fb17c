#!/usr/bin/env python3
"""The benchmark's checks must be able to fail. First the table of
alternating rounds is checked on made-up figures; then two runs of
compare.py, each with one fault, each required to exit 1 and name it:
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


def rounds_table():
    """The table from three alternating rounds per proxy, without running
    anything: the median round is picked, and the CPU ratio is the median
    of the rounds' own ratios (not the ratio of the medians)."""
    args = compare.argparse.Namespace(repeat=3, batch=2000, concurrency=4,
                                      duration=20, perf=False)
    results = {}
    for name, cpus in (("promrelay", [0.50, 0.40, 0.45]),
                       ("vmagent", [1.00, 1.60, 2.00])):
        p = compare.Proxy(args, name, [], "", "", tempfile.gettempdir())
        for i, cpu in enumerate(cpus):
            p.run = lambda sink, label, extra, profile=False, cpu=cpu: {
                "cpu_s_per_million": cpu,
                "loadgen": {"samples_per_s": cpu * 1e6}}
            p.closed_loop_round(None, i)
        results[name] = p.res
    return compare.table(results, args)


failed = []
text = rounds_table()
print(text)
# Ratios per round 0.5, 0.25, 0.225: median 0.25, where the medians'
# ratio would be 0.45 / 1.6 = 0.281; throughput comes from the median round.
if ("| 0.450 | 1.600 | 0.25× (median of rounds) |" in text and
        "| 0.500 / 0.400 / 0.450 | 1.000 / 1.600 / 2.000 | "
        "0.5× / 0.25× / 0.225× |" in text and
        "| 450,000 | 1,600,000 |" in text):
    print("selftest: the table shows the median rounds and ratio")
else:
    failed.append("rounds table: median round or ratio wrong")

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
