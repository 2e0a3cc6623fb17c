#!/usr/bin/env python3
"""The benchmark's delivery check must be able to fail: run compare.py on
vmagent with the GDPR labeldrop left out of the platform destination's rules
and require exit 1 with the leak and the fingerprint mismatch reported.
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


compare.write_configs = without_labeldrop
out = tempfile.mkdtemp(prefix="bench-selftest-")
sys.argv = ["compare.py", "--quick", "--duration", "1", "--only", "vmagent",
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
ok = (rc == 1 and "still carried a tenant label" in text and
      "fingerprint mismatch" in text and "customer sink" not in text)
print("selftest: the delivery check caught the leak" if ok else
      f"selftest: FAILED: exit {rc}, expected 1 with the leak reported")
sys.exit(0 if ok else 1)
