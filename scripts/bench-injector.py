#!/usr/bin/env python3
"""Injector benchmark: keyhole-injector's `/mutate` against a handler that only
parses the AdmissionReview and allows it, on the same server stack.

Builds `keyhole-injector` and the `parse-and-allow` example in release mode
(the example runs the injector's own `webhook::serve` with the same TLS,
timeouts and body limit; only the handler differs), generates a CA and a
serving certificate with openssl, and starts both servers on loopback. The
review is a pod with 5 secrets, each with a template, which the injector
patches (it parses and validates each template).

Load comes from `oha` (https://github.com/hatoo/oha), an open-loop generator:
at a fixed rate (`-q`) with latency correction, so a slow answer does not
delay the next request and latencies are measured from when each request was
due. It talks HTTP/1.1 over TLS with kept-alive connections. For each rate
(default 100, 1000, 5000 reviews/s) each server gets a warm-up and then a
measured run; a last run without a rate limit measures the most each server
answers. While a server is under load its VmRSS is sampled from
/proc/<pid>/status every 100 ms; VmHWM (the kernel's high-water mark) and the
server's CPU time (utime + stime from /proc/<pid>/stat) are read around the
run.

The load generator and the server under test run on different cores
(`taskset`, server on `--server-cpus`, oha on `--load-cpus`; defaults 1 and
0), so the latency tail is the server's and not oha's competing for a core,
and both servers get the same single core. `--no-pin` turns this off.

`--callgrind N` measures instead what is independent of the machine's load:
each server runs under `valgrind --tool=callgrind` and answers one review,
then, in a second run, 1 + N reviews over one kept-alive connection; the
difference of the two runs' instruction counts over N is the instructions
per review, TLS, HTTP and review parsing included. Needs valgrind.
`--callgrind-dir DIR` keeps the callgrind output files there, for
`callgrind_annotate --inclusive=yes DIR/callgrind.injector.101`.

Every review carries the same templates, as the pods of one ReplicaSet do,
and the injector remembers the templates it parsed. `--distinct` (with
`--callgrind`) sends instead reviews whose templates no review before had,
the case that memo does not help.

`oha` is found with `--oha PATH`, on PATH, or in $KEYHOLE_BENCH_TOOLS/bin
(default ~/.cache/keyhole-bench/bin); if missing it is installed there with
`cargo install --locked oha --version 1.16.0 --root <that directory>`. It is
a tool for this script only, not a dependency of keyhole.

Usage: scripts/bench-injector.py [--rates 100,1000,5000] [--duration 20]
                                  [--quick] [--oha PATH] [--server-cpus 1]
                                  [--load-cpus 0] [--no-pin] [--callgrind N]
                                  [--callgrind-dir DIR] [--distinct]
Needs `openssl`, `taskset` (util-linux) and cargo.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import benchlib

OHA_VERSION = "1.16.0"
HOST = "keyhole-injector.keyhole.svc"
SECRETS = 5


def find_oha(path):
    if path:
        return path
    found = shutil.which("oha")
    if found:
        return found
    root = os.environ.get("KEYHOLE_BENCH_TOOLS",
                          os.path.join(os.path.expanduser("~"), ".cache", "keyhole-bench"))
    oha = os.path.join(root, "bin", "oha")
    if not os.path.exists(oha):
        print(f"installing oha {OHA_VERSION} into {root} (cargo install --locked)", flush=True)
        subprocess.run(["cargo", "install", "--locked", "oha", "--version", OHA_VERSION,
                        "--root", root], check=True)
    return oha


def build():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(benchlib.ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "keyhole-injector",
                    "--bin", "keyhole-injector", "--example", "parse-and-allow"],
                   cwd=benchlib.ROOT, check=True)
    release = os.path.join(target, "release")
    return (os.path.join(release, "keyhole-injector"),
            os.path.join(release, "examples", "parse-and-allow"))


def review(path, variant=""):
    """An AdmissionReview for a pod with SECRETS secrets, each with a template,
    written to `path`. `variant` goes into every secret's path, so reviews of
    different variants carry different templates."""
    with open(path, "w") as f:
        f.write(review_json(variant))


def review_json(variant):
    annotations = {
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "app",
    }
    for i in range(SECRETS):
        annotations[f"vault.hashicorp.com/agent-inject-secret-app-{i}"] = (
            f"secret/data/app-{i}{variant}")
        annotations[f"vault.hashicorp.com/agent-inject-template-app-{i}"] = (
            f'{{{{- with secret "secret/data/app-{i}{variant}" -}}}}\n'
            'username={{ .Data.data.username }}\n'
            'password={{ .Data.data.password }}\n'
            '{{- end }}\n')
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "app-7d9c5b6f4-", "namespace": "shop",
                     "labels": {"app": "app"}, "annotations": annotations},
        "spec": {"serviceAccountName": "app",
                 "containers": [{"name": "app", "image": "registry.example/app:1.0",
                                 "ports": [{"containerPort": 8080}]}]},
    }
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    body = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "6c1f1d3e-8d1b-4a47-9a0e-2f5d7c3b9e10", "kind": gvk, "resource": gvr,
            "requestKind": gvk, "requestResource": gvr, "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod, "oldObject": None, "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
    return json.dumps(body)


def check_answer(server, ca, body_path):
    """One review over Python's TLS, so a broken setup fails loudly instead of
    being benchmarked. Returns whether the answer carries a patch."""
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
    with open(body_path, "rb") as f:
        conn.request("POST", "/mutate", f.read(), {"content-type": "application/json"})
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    conn.close()
    if resp.status != 200 or answer["response"]["allowed"] is not True:
        raise SystemExit(f"{server.name} answered {resp.status}: {answer}")
    return "patch" in answer["response"]


def send_reviews(port, ca, body_path, count, distinct):
    """`count` reviews over one kept-alive connection, each checked to be
    allowed: the review in `body_path`, or with `distinct` one whose templates
    no review before it had."""
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
    with open(body_path, "rb") as f:
        same = f.read()
    for n in range(count):
        body = review_json(f"-{n}").encode() if distinct else same
        conn.request("POST", "/mutate", body, {"content-type": "application/json"})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        if resp.status != 200 or answer["response"]["allowed"] is not True:
            raise SystemExit(f"answered {resp.status}: {answer}")
    conn.close()


def instructions(argv_for_port, ca, body_path, reviews, distinct, workdir, name, log):
    """Instructions a server runs per review: callgrind totals of a run with
    1 + `reviews` reviews less those of a run with 1, over `reviews`."""
    totals = []
    for count in (1, 1 + reviews):
        port = benchlib.free_port()
        out = os.path.join(workdir, f"callgrind.{name}.{count}")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             *argv_for_port(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit(f"{name} exited with {proc.returncode} under valgrind")
                    time.sleep(0.1)
            send_reviews(port, ca, body_path, count, distinct)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait()
        with open(out) as f:
            total = next(int(line.split()[1]) for line in f if line.startswith("totals:"))
        totals.append(total)
    return (totals[1] - totals[0]) / reviews


def callgrind(args, injector, baseline):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.callgrind_dir or tmp
        os.makedirs(workdir, exist_ok=True)
        ca, cert, key = benchlib.certificates(tmp, HOST)
        body = os.path.join(tmp, "review.json")
        review(body)
        with open(os.path.join(tmp, "servers.log"), "wb") as log:
            per_review = {
                "keyhole-injector": instructions(lambda port: [
                    injector, "serve", f"--listen=127.0.0.1:{port}",
                    f"--admin-listen=127.0.0.1:{benchlib.free_port()}", f"--tls-cert={cert}",
                    f"--tls-key={key}", "--vault-addr=https://vault.vault.svc:8200",
                    "--log-level=warn"], ca, body, args.callgrind, args.distinct, workdir,
                    "injector", log),
                "parse-and-allow": instructions(lambda port: [
                    baseline, f"--listen=127.0.0.1:{port}", f"--tls-cert={cert}",
                    f"--tls-key={key}"], ca, body, args.callgrind, args.distinct, workdir,
                    "baseline", log),
            }
    templates = ("templates no review before had" if args.distinct
                 else "the same templates in every review")
    print(f"\n{SECRETS} secrets with templates per pod, {templates}; instructions per review, "
          f"callgrind, {args.callgrind} reviews over one kept-alive TLS connection\n")
    print("| handler | instructions/review |")
    print("|---|---:|")
    for name, count in per_review.items():
        print(f"| {name} | {count:,.0f} |")
    ratio = per_review["keyhole-injector"] / per_review["parse-and-allow"]
    print(f"\ninstructions per review: keyhole-injector / parse-and-allow = {ratio:.2f}")


def pinned(cpus, argv):
    """`argv` run on the CPUs listed in `cpus` (taskset's list syntax), or
    anywhere when `cpus` is None. taskset execs the command, so the process
    keeps its pid and its /proc entries are the command's."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def load(oha, ca, server, body, duration, rate, connections, cpus):
    argv = [oha, "--no-tui", "--output-format", "json", "-z", f"{duration}s",
            "--wait-ongoing-requests-after-deadline",
            "-c", str(connections), "-m", "POST", "-H", "content-type: application/json",
            "-D", body, "--cacert", ca, server.url]
    if rate:
        argv[1:1] = ["-q", str(rate), "--latency-correction"]
    argv = pinned(cpus, argv)
    samples, done = [], threading.Event()

    def sample():
        while not done.wait(0.1):
            samples.append(server.status_kib("VmRSS"))

    sampler = threading.Thread(target=sample)
    cpu_before = server.cpu_seconds()
    sampler.start()
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    finally:
        done.set()
        sampler.join()
    cpu = server.cpu_seconds() - cpu_before
    result = json.loads(out)
    summary, pct = result["summary"], result["latencyPercentiles"]
    codes = result.get("statusCodeDistribution", {})
    answered = codes.get("200", 0)
    errors = sum(result.get("errorDistribution", {}).values()) + sum(
        n for code, n in codes.items() if code != "200")
    return {
        "rps": answered / duration,
        "p50": pct["p50"] * 1000, "p90": pct["p90"] * 1000,
        "p99": pct["p99"] * 1000, "p999": pct["p99.9"] * 1000,
        "errors": errors,
        "cpu_us": cpu / answered * 1e6 if answered else float("nan"),
        "rss": max(samples, default=server.status_kib("VmRSS")) / 1024,
        "hwm": server.status_kib("VmHWM") / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,1000,5000")
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=16,
                        help="kept-alive connections for the rate-limited runs")
    parser.add_argument("--max-connections", type=int, default=32,
                        help="kept-alive connections for the unthrottled run")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 s per run, 1 s warm-up")
    parser.add_argument("--oha", default=None, help="oha binary (default: PATH, or install)")
    parser.add_argument("--injector", default=None, help="keyhole-injector binary")
    parser.add_argument("--baseline", default=None, help="parse-and-allow example binary")
    parser.add_argument("--server-cpus", default="1",
                        help="CPUs the server under test runs on (taskset -c list)")
    parser.add_argument("--load-cpus", default="0", help="CPUs oha runs on (taskset -c list)")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the servers and oha run on any CPU")
    parser.add_argument("--callgrind", type=int, default=None, metavar="N",
                        help="count instructions per review over N reviews instead of load runs")
    parser.add_argument("--callgrind-dir", default=None, metavar="DIR",
                        help="keep the callgrind output files in DIR")
    parser.add_argument("--distinct", action="store_true",
                        help="with --callgrind: templates no review before had, instead of "
                             "the same ones each time")
    args = parser.parse_args()
    if args.distinct and args.callgrind is None:
        parser.error("--distinct goes with --callgrind: the load runs send one review body")
    server_cpus, load_cpus = (None, None) if args.no_pin else (args.server_cpus, args.load_cpus)
    if args.quick:
        args.duration, args.warmup = 3, 1
    rates = [int(r) for r in args.rates.split(",")]
    if args.injector and args.baseline:
        injector, baseline = args.injector, args.baseline
    else:
        injector, baseline = build()
    if args.callgrind:
        callgrind(args, injector, baseline)
        return
    oha = find_oha(args.oha)

    with tempfile.TemporaryDirectory() as workdir:
        ca, cert, key = benchlib.certificates(workdir, HOST)
        body = os.path.join(workdir, "review.json")
        review(body)
        log = open(os.path.join(workdir, "servers.log"), "wb")
        ports = benchlib.free_port(), benchlib.free_port(), benchlib.free_port()
        servers = [
            benchlib.Server("keyhole-injector", pinned(server_cpus, [
                injector, "serve", f"--listen=127.0.0.1:{ports[0]}",
                f"--admin-listen=127.0.0.1:{ports[1]}", f"--tls-cert={cert}",
                f"--tls-key={key}", "--vault-addr=https://vault.vault.svc:8200",
                "--log-level=warn"]), ports[0], log),
            benchlib.Server("parse-and-allow", pinned(server_cpus, [
                baseline, f"--listen=127.0.0.1:{ports[2]}", f"--tls-cert={cert}",
                f"--tls-key={key}"]), ports[2], log),
        ]
        try:
            for server in servers:
                server.wait_listening()
            if not check_answer(servers[0], ca, body):
                raise SystemExit("keyhole-injector did not patch the benchmark pod")
            check_answer(servers[1], ca, body)
            pinning = (f"servers on CPU {server_cpus}, oha on CPU {load_cpus}"
                       if server_cpus else "not pinned")
            print(f"load: {os.getloadavg()}; oha: {oha}; {pinning}", flush=True)
            rows = []
            for rate in rates + [None]:
                connections = args.connections if rate else args.max_connections
                for server in servers:
                    load(oha, ca, server, body, args.warmup, rate, connections, load_cpus)
                    result = load(oha, ca, server, body, args.duration, rate, connections,
                                  load_cpus)
                    rows.append((server.name, rate, connections, result))
                    label = rate or "max"
                    print(f"  {server.name} @ {label}: {result['rps']:.0f}/s "
                          f"p99 {result['p99']:.2f} ms", flush=True)
        finally:
            for server in servers:
                server.stop()
            log.close()

    print(f"\n{SECRETS} secrets with templates per pod, the same in every review, "
          f"{args.duration} s per run, "
          f"after {args.warmup} s warm-up; {pinning}; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| handler | offered | conns | answered/s | p50 ms | p90 ms | p99 ms | p99.9 ms "
          "| errors | CPU µs/review | VmRSS max MiB | VmHWM MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rate, connections, r in rows:
        offered = f"{rate:,}/s" if rate else "max"
        print(f"| {name} | {offered} | {connections} | {r['rps']:,.0f} | {r['p50']:.3f} "
              f"| {r['p90']:.3f} | {r['p99']:.3f} | {r['p999']:.3f} | {r['errors']} "
              f"| {r['cpu_us']:.0f} | {r['rss']:.1f} | {r['hwm']:.1f} |")
    cpu = {(name, rate): r["cpu_us"] for name, rate, _, r in rows}
    print()
    for rate in rates + [None]:
        baseline_cpu = cpu.get(("parse-and-allow", rate))
        if baseline_cpu:
            ratio = cpu[("keyhole-injector", rate)] / baseline_cpu
            print(f"CPU per review @ {rate or 'max'}: keyhole-injector / parse-and-allow "
                  f"= {ratio:.2f}")
    best = {name: r["rps"] for name, rate, _, r in rows if rate is None}
    if best.get("parse-and-allow"):
        ratio = best["keyhole-injector"] / best["parse-and-allow"]
        print(f"\nmax throughput: keyhole-injector / parse-and-allow = {ratio:.2f}")


if __name__ == "__main__":
    main()
