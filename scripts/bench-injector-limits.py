#!/usr/bin/env python3
"""Injector under the largest reviews: peak memory and time of keyhole-injector
for the biggest pods its limits admit, and for the attacks those limits stop.

Starts the release `keyhole-injector serve` (built unless `--injector` is
given) with TOKIO_WORKER_THREADS=2, as the Helm chart runs it, on loopback with
a certificate from openssl. Each case gets a fresh server: the script sends
the case's review `--rounds` times, `--in-flight` at once over separate
connections, checks every answer, and reports the server's VmHWM (the kernel's
peak of resident memory) and the median time from sending a review to reading
its answer.

The cases:
- largest-admitted: a 3 MiB review (the body limit) of a pod with the most
  containers (100), each mounting the most secret volumes (16), three inline
  templates of `{{ 1 }}` actions (the costliest text to parse) filling the
  annotation limit, and the rest of the body a list of tiny env entries;
- tiny-volumes: a 3 MiB review listing `{"name":"v"}` volumes (3 KiB each as a
  k8s-openapi `Volume`), past the volume limit;
- many-secrets: 1,000 secrets, each with its own `secret-volume-path`, in a
  pod of 100 containers (133 KB; it once peaked at 292 MB);
- same-path-secrets: 20,000 secrets of one path (1.5 MB; once 26.6 s);
- big-template: a 2.9 MB template (once 122 MB).

Usage: scripts/bench-injector-limits.py [--rounds 20] [--in-flight 2] [--injector PATH]
Needs `openssl` and cargo.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import ssl
import statistics
import tempfile
import time

import benchlib

HOST = "keyhole-injector.keyhole.svc"
BODY_LIMIT = 3 * 1024 * 1024
MAX_CONTAINERS = 100
MAX_SECRET_VOLUMES = 16
MAX_TEMPLATE_BYTES = 64 * 1024


def review(pod):
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1", "kind": gvk,
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "apps", "operation": "CREATE", "userInfo": {}, "object": pod,
        },
    }


def encode(value):
    return json.dumps(value, separators=(",", ":")).encode()


def pod(annotations, containers, volumes=None):
    spec = {"containers": containers}
    if volumes is not None:
        spec["volumes"] = volumes
    base = {"vault.hashicorp.com/agent-inject": "true", "vault.hashicorp.com/role": "app"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "big", "annotations": {**base, **annotations}},
            "spec": spec}


def largest_admitted():
    annotations = {}
    template = "{{ 1 }}" * ((MAX_TEMPLATE_BYTES - 1024) // 7)
    for i in range(3):
        annotations[f"vault.hashicorp.com/agent-inject-template-t{i}"] = template
    for i in range(MAX_SECRET_VOLUMES - 1):
        annotations[f"vault.hashicorp.com/agent-inject-secret-s{i}"] = f"secret/data/s{i}"
        annotations[f"vault.hashicorp.com/secret-volume-path-s{i}"] = f"/secrets/{i}"
    containers = [{"name": f"c{i}", "image": "app"} for i in range(MAX_CONTAINERS)]
    containers[0]["env"] = []
    body = review(pod(annotations, containers))
    unpadded = len(encode(body))
    entry = {"name": "E"}
    count = (BODY_LIMIT - unpadded - 64) // (len(encode(entry)) + 1)
    containers[0]["env"] = [entry] * count + [{"name": "PAD", "value": ""}]
    fill = BODY_LIMIT - len(encode(body))
    containers[0]["env"][-1]["value"] = "x" * fill
    return encode(body), True


def tiny_volumes():
    containers = [{"name": "app"}]
    annotations = {"vault.hashicorp.com/agent-inject-secret-db": "secret/data/db"}
    body = review(pod(annotations, containers, volumes=[]))
    room = BODY_LIMIT - len(encode(body)) - 16
    volume = {"name": "v"}
    body["request"]["object"]["spec"]["volumes"] = [volume] * (room // (len(encode(volume)) + 1))
    return encode(body), False


def many_secrets():
    annotations = {}
    for i in range(1000):
        annotations[f"vault.hashicorp.com/agent-inject-secret-s{i}"] = f"secret/data/s{i}"
        annotations[f"vault.hashicorp.com/secret-volume-path-s{i}"] = f"/secrets/{i}"
    containers = [{"name": f"c{i}", "image": "app"} for i in range(100)]
    return encode(review(pod(annotations, containers))), False


def same_path_secrets():
    annotations = {f"vault.hashicorp.com/agent-inject-secret-s{i}": "secret/data/db"
                   for i in range(20_000)}
    return encode(review(pod(annotations, [{"name": "app", "image": "app"}]))), False


def big_template():
    annotations = {"vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
                   "vault.hashicorp.com/agent-inject-template-db": "x" * 2_900_000}
    return encode(review(pod(annotations, [{"name": "app", "image": "app"}]))), False


CASES = {
    "largest-admitted": largest_admitted,
    "tiny-volumes": tiny_volumes,
    "many-secrets": many_secrets,
    "same-path-secrets": same_path_secrets,
    "big-template": big_template,
}


def send(port, ca, body):
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
    started = time.monotonic()
    conn.request("POST", "/mutate", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.monotonic() - started
    conn.close()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {data[:200]!r}")
    return json.loads(data)["response"], elapsed


def run_case(name, injector, ca, cert, key, rounds, in_flight, workdir):
    body, admitted = CASES[name]()
    port, admin = benchlib.free_port(), benchlib.free_port()
    log = open(os.path.join(workdir, f"{name}.log"), "wb")
    env = dict(os.environ, TOKIO_WORKER_THREADS="2")
    server = benchlib.Server(name, [
        injector, "serve", f"--listen=127.0.0.1:{port}", f"--admin-listen=127.0.0.1:{admin}",
        f"--tls-cert={cert}", f"--tls-key={key}",
        "--vault-addr=https://vault.vault.svc:8200", "--log-level=warn"], port, log, env=env)
    try:
        server.wait_listening()
        idle = server.status_kib("VmHWM") / 1024
        times, message = [], ""
        with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
            for _ in range(rounds):
                for response, elapsed in pool.map(lambda _: send(port, ca, body),
                                                  range(in_flight)):
                    if response["allowed"] is not admitted:
                        raise SystemExit(f"{name}: unexpected answer {response}")
                    message = response.get("status", {}).get("message", "")
                    times.append(elapsed)
        return {"bytes": len(body), "idle": idle, "hwm": server.status_kib("VmHWM") / 1024,
                "median_ms": statistics.median(times) * 1000,
                "max_ms": max(times) * 1000, "answer": "patched" if admitted else message}
    finally:
        server.stop()
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--injector", default=None, help="keyhole-injector binary")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    injector = args.injector or benchlib.release_binary("keyhole-injector")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        ca, cert, key = benchlib.certificates(workdir, HOST)
        for name in args.cases.split(","):
            result = run_case(name, injector, ca, cert, key, args.rounds, args.in_flight,
                              workdir)
            print(f"  {name}: VmHWM {result['hwm']:.1f} MiB, "
                  f"median {result['median_ms']:.1f} ms", flush=True)
            rows.append((name, result))
    print(f"\n{benchlib.conditions()}; TOKIO_WORKER_THREADS=2; {args.rounds} rounds of "
          f"{args.in_flight} reviews in flight\n")
    print(benchlib.table(
        ["case", "review bytes", "VmHWM idle MiB", "VmHWM MiB", "median ms", "max ms",
         "answer"],
        [(name, f"{r['bytes']:,}", f"{r['idle']:.1f}", f"{r['hwm']:.1f}",
          f"{r['median_ms']:.1f}", f"{r['max_ms']:.1f}", r["answer"][:90])
         for name, r in rows],
        "lrrrrrl"))


if __name__ == "__main__":
    main()
