#!/usr/bin/env python3
"""Structural checks of the shipped deployment files.

No Docker engine or Kubernetes API server runs in CI, so this checks what can
be checked offline: the compose file references only files, images, ports and
volumes that exist; every kustomize variant builds and its objects fit
together (selectors, ports, mounts, secrets, probes, autoscaler targets); the
Dockerfile builds with the same scripts the README uses; and every shipped
promrelay config passes `promrelay check-config`.

With --promrelay, also starts it and checks that every metric the alert
rules and the dashboard use is exposed.

Usage: check_deploy.py [--promrelay PATH]   (exit 1 and a list of problems on failure)
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def check_compose(promrelay):
    compose_dir = os.path.join(ROOT, "docker")
    path = os.path.join(compose_dir, "docker-compose.yaml")
    doc = yaml.safe_load(open(path))
    services = doc.get("services") or {}
    if not services:
        problem(path, "no services")
    named_volumes = set((doc.get("volumes") or {}).keys())
    host_ports = set()
    for name, svc in services.items():
        where = f"{path}: services.{name}"
        build = svc.get("build")
        image = svc.get("image")
        if build:
            ctx = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            if not os.path.isdir(ctx):
                problem(where, f"build context {ctx} does not exist")
            if not os.path.isfile(dockerfile):
                problem(where, f"Dockerfile {dockerfile} does not exist")
        elif not image:
            problem(where, "neither image nor build")
        elif not re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)*", image):
            problem(where, f"image {image!r} is not pinned to a version tag")
        for port in svc.get("ports", []):
            m = re.fullmatch(r"(\d+):(\d+)", str(port))
            if not m or not all(0 < int(p) < 65536 for p in m.groups()):
                problem(where, f"bad port mapping {port!r}")
            elif m.group(1) in host_ports:
                problem(where, f"host port {m.group(1)} used twice")
            else:
                host_ports.add(m.group(1))
        for vol in svc.get("volumes", []):
            source = str(vol).split(":")[0]
            if source.startswith(".") or source.startswith("/"):
                full = os.path.normpath(os.path.join(compose_dir, source))
                if not os.path.exists(full):
                    problem(where, f"volume source {source} does not exist")
            elif source not in named_volumes:
                problem(where, f"named volume {source} is not declared")
        for dep in svc.get("depends_on", []):
            if dep not in services:
                problem(where, f"depends_on unknown service {dep}")
    # Service names used in URLs must exist (they resolve on the compose network).
    for cfg in ("compose/promrelay.yaml", "compose/vmagent-scrape.yaml"):
        text = open(os.path.join(compose_dir, cfg)).read()
        for host in re.findall(r"(?:https?://|\[\")([a-z][\w-]*):\d+", text):
            if host not in services and host != "localhost":
                problem(f"docker/{cfg}", f"refers to unknown service {host}")
    promtool = shutil.which("promtool")
    if promtool:
        for args in (["check", "web-config", "compose/prometheus-web.yaml"],
                     ["check", "config", "compose/prometheus.yaml"]):
            r = subprocess.run([promtool] + args, cwd=compose_dir, capture_output=True, text=True)
            if r.returncode != 0:
                problem("docker/" + args[-1], r.stdout + r.stderr)
    check_promrelay_config(promrelay, os.path.join(compose_dir, "compose/promrelay.yaml"),
                           {"GRAFANA_CLOUD_INSTANCE_ID": "grafana"})


def check_dockerfile():
    path = os.path.join(ROOT, "docker", "Dockerfile")
    text = open(path).read()
    for src in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        if src != "." and not os.path.exists(os.path.join(ROOT, src)):
            problem(path, f"COPY source {src} does not exist")
    # One way to build: the image must use the scripts the README uses.
    for script in ("scripts/install-deps.sh", "scripts/build.sh"):
        if script not in text:
            problem(path, f"does not use {script}")
    for word in ("USER", "VOLUME", "HEALTHCHECK"):
        if not re.search(rf"^{word} ", text, re.M):
            problem(path, f"has no {word}")
    m = re.search(r"^USER (\S+)", text, re.M)
    if m and m.group(1).split(":")[0] in ("root", "0"):
        problem(path, "runs as root")
    if not os.path.isfile(os.path.join(ROOT, ".dockerignore")):
        problem(path, ".dockerignore is missing")


def kustomize(variant_dir):
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", variant_dir], capture_output=True, text=True)
    elif shutil.which("kustomize"):
        r = subprocess.run(["kustomize", "build", variant_dir], capture_output=True, text=True)
    else:
        return None
    if r.returncode != 0:
        problem(variant_dir, "kustomize build failed: " + r.stderr.strip())
        return []
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def check_workload(where, obj, by_kind, promrelay):
    spec = obj["spec"]
    sel = spec["selector"]["matchLabels"]
    labels = spec["template"]["metadata"].get("labels", {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        problem(where, f"selector {sel} does not match pod labels {labels}")
    ps = pod_spec(obj)
    volumes = {v["name"]: v for v in ps.get("volumes", [])}
    for tmpl in spec.get("volumeClaimTemplates", []):
        volumes[tmpl["metadata"]["name"]] = {"pvc": True}
    configmaps = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    secrets = {o["metadata"]["name"]: o for o in by_kind.get("Secret", [])}
    for name, vol in volumes.items():
        if "configMap" in vol and vol["configMap"]["name"] not in configmaps:
            problem(where, f"volume {name} uses missing ConfigMap {vol['configMap']['name']}")
        if "secret" in vol:
            sec = secrets.get(vol["secret"]["secretName"])
            if sec is None:
                problem(where, f"volume {name} uses missing Secret {vol['secret']['secretName']}")
            else:
                for item in vol["secret"].get("items", []):
                    if item["key"] not in sec.get("data", {}):
                        problem(where, f"Secret {sec['metadata']['name']} has no key {item['key']}")
    found_promrelay = False
    for c in ps["containers"]:
        cw = f"{where} container {c['name']}"
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problem(cw, f"mounts undeclared volume {m['name']}")
        for env in c.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                sec = secrets.get(ref["name"])
                if sec is None or ref["key"] not in sec.get("data", {}):
                    problem(cw, f"env {env['name']} refers to missing secret key {ref['name']}/{ref['key']}")
        if "promrelay" not in c["image"]:
            continue
        found_promrelay = True
        if c.get("resources", {}).get("requests") is None:
            problem(cw, "no resource requests")
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            get = (c.get(probe) or {}).get("httpGet")
            if not get:
                problem(cw, f"no {probe}")
                continue
            if get["path"] != path:
                problem(cw, f"{probe} path {get['path']} is not {path}")
            if get["port"] not in ports and get["port"] not in ports.values():
                problem(cw, f"{probe} port {get['port']} is not a container port")
        args = c.get("args", [])
        if "--config" not in args:
            problem(cw, "no --config argument")
            continue
        config_path = args[args.index("--config") + 1]
        mount_dir = os.path.dirname(config_path)
        vol = volumes.get(mounts.get(mount_dir, ""), {})
        cm = configmaps.get((vol.get("configMap") or {}).get("name", ""))
        if cm is None or os.path.basename(config_path) not in cm.get("data", {}):
            problem(cw, f"--config {config_path} is not provided by a mounted ConfigMap")
            continue
        cfg = yaml.safe_load(cm["data"][os.path.basename(config_path)])
        for dest in cfg.get("remote_write", []):
            storage = dest.get("storage")
            if storage and not any(storage["path"].startswith(p + "/") for p in mounts):
                problem(cw, f"storage path {storage['path']} is not on a mounted volume")
            pw = (dest.get("basic_auth") or {}).get("password_file")
            if pw and os.path.dirname(pw) not in mounts:
                problem(cw, f"password_file {pw} is not on a mounted volume")
        # Stand-ins for the Secret's values, shaped like the real ones.
        env = {e["name"]: "https://placeholder.invalid/api/prom/push" if e["name"].endswith("_URL")
               else "placeholder" for e in c.get("env", [])}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(cm["data"][os.path.basename(config_path)])
        check_promrelay_config(promrelay, f.name, env)
        os.unlink(f.name)
    return found_promrelay


def check_kubernetes(promrelay):
    base = os.path.join(ROOT, "deploy", "kubernetes")
    variants = [d for d in sorted(os.listdir(base))
                if d not in ("base", "gateway-common") and os.path.isfile(os.path.join(base, d, "kustomization.yaml"))]
    if set(variants) < {"sidecar", "gateway"}:
        problem(base, f"expected sidecar and gateway variants, found {variants}")
    for variant in variants:
        objs = kustomize(os.path.join(base, variant))
        if objs is None:
            problem(base, "neither kubectl nor kustomize is installed")
            return
        by_kind = {}
        for o in objs:
            by_kind.setdefault(o["kind"], []).append(o)
        workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
        if not any(check_workload(f"{variant}/{w['kind']}/{w['metadata']['name']}", w, by_kind, promrelay)
                   for w in workloads):
            problem(variant, "no workload runs promrelay")
        pods = [(w, w["spec"]["template"]["metadata"]["labels"]) for w in workloads]
        for svc in by_kind.get("Service", []):
            where = f"{variant}/Service/{svc['metadata']['name']}"
            sel = svc["spec"].get("selector", {})
            matched = [w for w, labels in pods if all(labels.get(k) == v for k, v in sel.items())]
            if not matched:
                problem(where, f"selector {sel} matches no pod")
            for p in svc["spec"]["ports"]:
                target = p.get("targetPort", p["port"])
                for w in matched:
                    names = {cp.get("name") for c in pod_spec(w)["containers"] for cp in c.get("ports", [])}
                    nums = {cp["containerPort"] for c in pod_spec(w)["containers"] for cp in c.get("ports", [])}
                    if target not in names and target not in nums:
                        problem(where, f"targetPort {target} is not a port of {w['metadata']['name']}")
            if svc["spec"].get("clusterIP") == "None":
                sts = [w for w in by_kind.get("StatefulSet", []) if w["spec"].get("serviceName") == svc["metadata"]["name"]]
                if not sts:
                    problem(where, "headless Service used by no StatefulSet")
        for pdb in by_kind.get("PodDisruptionBudget", []):
            sel = pdb["spec"]["selector"]["matchLabels"]
            if not any(all(labels.get(k) == v for k, v in sel.items()) for _, labels in pods):
                problem(f"{variant}/PodDisruptionBudget", f"selector {sel} matches no pod")
        for hpa in by_kind.get("HorizontalPodAutoscaler", []):
            ref = hpa["spec"]["scaleTargetRef"]
            if not any(w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"] for w in workloads):
                problem(f"{variant}/HorizontalPodAutoscaler", f"scaleTargetRef {ref} does not exist")
            if not any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"].get("metrics", [])):
                problem(f"{variant}/HorizontalPodAutoscaler", "does not scale on CPU")
        if variant.startswith("gateway"):
            for kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
                if kind not in by_kind:
                    problem(variant, f"gateway has no {kind}")


def check_promrelay_config(promrelay, path, env):
    if not promrelay:
        return
    text = open(path).read()
    # Secret files live at their in-cluster paths; point them at a temp file.
    with tempfile.TemporaryDirectory() as tmp:
        secret = os.path.join(tmp, "secret")
        open(secret, "w").write("placeholder\n")
        text = re.sub(r"(password_file|bearer_token_file): \S+", rf"\1: {secret}", text)
        copy = os.path.join(tmp, "config.yaml")
        open(copy, "w").write(text)
        r = subprocess.run([promrelay, "check-config", "--config", copy], capture_output=True, text=True,
                           env=dict(os.environ, **env))
        if r.returncode != 0:
            problem(path, "promrelay check-config failed:\n" + r.stdout + r.stderr)


def referenced_metrics():
    """promrelay_* names the alert rules and the dashboard query."""
    texts = [open(os.path.join(ROOT, "config", "alerts.yaml")).read()]
    dash_path = os.path.join(ROOT, "config", "grafana", "promrelay-dashboard.json")
    dash = json.load(open(dash_path))
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            texts.append(target["expr"])
    names = set()
    for text in texts:
        for name in re.findall(r"\b(promrelay_[a-z0-9_]+)", text):
            names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def check_metrics_exist(promrelay):
    """Every metric an alert or a dashboard panel uses is exposed by promrelay."""
    if not promrelay:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "promrelay.yaml")
        # Destinations on a closed loopback port: nothing leaves the machine.
        open(cfg, "w").write(f"""server:
  listen_address: 127.0.0.1:{port}
remote_write:
  - name: a
    url: http://127.0.0.1:9/api/v1/write
  - name: b
    url: http://127.0.0.1:9/api/v1/write
    storage: {{path: {tmp}/queue-b}}
""")
        proc = subprocess.Popen([promrelay, "--config", cfg], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            body = None
            for _ in range(100):
                try:
                    url = f"http://127.0.0.1:{port}/metrics"
                    urllib.request.urlopen(url, timeout=2).read()
                    # Second scrape: per-request histograms exist after the first.
                    body = urllib.request.urlopen(url, timeout=2).read().decode()
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.1)
            if body is None:
                problem("promrelay", "did not serve /metrics: " + (proc.stderr.read() if proc.poll() is not None else "timeout"))
                return
            missing = referenced_metrics() - set(re.findall(r"^# TYPE (\S+) ", body, re.M))
            for _ in range(10):
                if not missing:
                    break
                # A request's duration is recorded just after its response.
                time.sleep(0.2)
                body = urllib.request.urlopen(url, timeout=2).read().decode()
                missing -= set(re.findall(r"^# TYPE (\S+) ", body, re.M))
            for name in sorted(missing):
                problem("config/alerts.yaml or dashboard", f"uses {name}, which promrelay does not expose")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def check_runbook():
    """Every alert links to a README runbook section that exists."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    headings = {h.strip().lower() for h in re.findall(r"^### (.+)$", readme, re.M)}
    rules = yaml.safe_load(open(os.path.join(ROOT, "config", "alerts.yaml")))
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule["alert"]
            if name.lower() not in headings:
                problem("README.md", f"no runbook section '### {name}'")
            url = rule.get("annotations", {}).get("runbook_url", "")
            if url != f"README.md#{name.lower()}":
                problem("config/alerts.yaml", f"{name}: runbook_url {url!r} is not README.md#{name.lower()}")


def check_dashboard():
    path = os.path.join(ROOT, "config", "grafana", "promrelay-dashboard.json")
    dash = json.load(open(path))
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problem(path, "duplicate panel ids")
    for panel in dash["panels"]:
        if not panel.get("targets"):
            problem(path, f"panel {panel['title']!r} has no query")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promrelay", help="promrelay binary for check-config")
    args = ap.parse_args()
    check_dockerfile()
    check_compose(args.promrelay)
    check_kubernetes(args.promrelay)
    check_dashboard()
    check_runbook()
    check_metrics_exist(args.promrelay)
    if problems:
        print(f"{len(problems)} problem(s):")
        for p in problems:
            print("  " + p)
        return 1
    print("deploy checks: compose, Dockerfile and every kustomize variant OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
