#!/usr/bin/env python3
"""API proxy benchmark: what a request through the agent's listener costs,
against the same request sent to OpenBao directly.

One OpenBao dev server with one KV v2 secret. `keyhole-agent` and `bao agent`
run side by side from the same Vault Agent config (token_file login,
`listener "tcp"` with TLS off, `api_proxy { use_auto_auth_token = true }`),
each on its own port. One client reads the secret over one kept-alive HTTP/1.1
connection per target, in turns (direct, keyhole, bao, direct, ...), so that
all three see the same server load; the app's request carries no token, the
agents add theirs, the direct one carries the same token. Every answer must
be 200.

A fourth target, `tcp relay`, is the agent crate's `tcp-relay` example: it
copies each connection's bytes to OpenBao without reading HTTP, on the agent's
runtime. Its overhead is the floor that one more loopback hop costs on this
machine, which no proxy goes below.

Prints a Markdown table: per-request latency (median, p90, p99) per target
and the median overhead against the direct request.

Then each agent in turn proxies `--rate` requests a second (default 100) for
`--seconds` (default 60), paced on one connection, while its resident memory
(VmRSS from /proc) is sampled twice a second; a second table gives each
agent's RSS before the load, at its highest and at the end.

With `--cache` both agents also have `cache { }`: the KV reads still go to
OpenBao (the lease cache keeps only leases and tokens), through the cache's
path, which reads each body whole.

`--callgrind N` counts instead the instructions keyhole-agent and the relay run
per proxied request under `valgrind --tool=callgrind`: one run answering 20
requests, one answering 20 + N over one kept-alive connection, the difference
over N. Instruction counts do not depend on the machine's load, so they
compare commits on a shared machine; they leave out the kernel's share.

Usage: scripts/bench-agent-proxy.py [--requests 10000] [--rate 100] [--seconds 60]
                                    [--keyhole PATH] [--relay PATH] [--cache] [--quick]
                                    [--callgrind N]
"""

import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time

import benchlib

PATH = "/v1/secret/data/app"


def config(bao, token_file, port, cache):
    return ("cache {}\n" if cache else "") + f"""
vault {{
  address = "{bao.addr}"
}}
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "{token_file}" }}
  }}
}}
listener "tcp" {{
  address     = "127.0.0.1:{port}"
  tls_disable = true
}}
api_proxy {{
  use_auto_auth_token = true
}}
"""


def start(argv, log, port, token=None):
    """Starts an agent (or the relay, whose reads need `token`) and waits until
    its listener answers."""
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(400):
        try:
            read(http.client.HTTPConnection("127.0.0.1", port, timeout=5), token)
            return proc
        except (OSError, RuntimeError):
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited with {proc.returncode}")
            time.sleep(0.05)
    raise SystemExit(f"{argv[0]} did not start listening on {port}")


def read(conn, token):
    """One read of the secret; the seconds it took."""
    headers = {"X-Vault-Token": token} if token else {}
    started = time.perf_counter()
    conn.request("GET", PATH, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    took = time.perf_counter() - started
    if resp.status != 200 or b"hunter2" not in body:
        raise RuntimeError(f"GET {PATH}: HTTP {resp.status}: {body[:200]!r}")
    return took


def instructions(argv_for_port, token, requests, workdir, name):
    """Instructions a proxy runs per request: callgrind totals of a run with
    20 + `requests` requests less those of a run with 20, over `requests`."""
    totals = []
    for count in (20, 20 + requests):
        port = benchlib.free_port()
        out = os.path.join(workdir, f"callgrind.{name}.{count}")
        with open(os.path.join(workdir, f"{name}.{count}.log"), "wb") as log:
            proc = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                          *argv_for_port(port)], log, port, token)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                for _ in range(count - 1):
                    read(conn, token)
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait()
        with open(out) as f:
            totals.append(next(int(line.split()[1]) for line in f if line.startswith("totals:")))
    return (totals[1] - totals[0]) / requests


def callgrind(args, keyhole, relay):
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as workdir:
        bao = benchlib.Bao(workdir)
        try:
            bao.request("POST", "secret/data/app", {"data": {"username": "app", "password": "hunter2"}})
            token_file = os.path.join(workdir, "token")
            with open(token_file, "w") as f:
                f.write(bao.token)

            def agent(port):
                path = os.path.join(workdir, f"keyhole-{port}.hcl")
                with open(path, "w") as f:
                    f.write(config(bao, token_file, port, args.cache))
                return [keyhole, "--config", path]

            per_request = {
                "keyhole-agent": instructions(agent, None, args.callgrind, workdir, "keyhole"),
                "tcp relay": instructions(lambda port: [
                    relay, "--listen", f"127.0.0.1:{port}", "--to", f"127.0.0.1:{bao.port}"],
                    bao.token, args.callgrind, workdir, "relay"),
            }
        finally:
            bao.stop()
    print(f"Instructions per proxied request, callgrind, {args.callgrind} requests over one "
          f"kept-alive connection{' (cache stanza)' if args.cache else ''}:\n")
    print(benchlib.table(["proxy", "instructions/request"],
                         [[name, f"{count:,.0f}"] for name, count in per_request.items()], "lr"))


def sustained(conn, rate, seconds, pid):
    """`rate` reads a second through an agent for `seconds`; its RSS samples."""
    interval = 1 / rate
    start = time.perf_counter()
    due, sampled, samples = start, 0.0, [benchlib.rss_mib(pid)]
    while due < start + seconds:
        read(conn, None)
        now = time.perf_counter()
        if now - sampled >= 0.5:
            samples.append(benchlib.rss_mib(pid))
            sampled = now
        due += interval
        time.sleep(max(0.0, due - time.perf_counter()))
    samples.append(benchlib.rss_mib(pid))
    return samples


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=100, help="requests/s under sustained load")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of sustained load per agent")
    parser.add_argument("--keyhole", help="a prebuilt keyhole-agent")
    parser.add_argument("--relay", help="a prebuilt tcp-relay example")
    parser.add_argument("--cache", action="store_true", help="give both agents a cache stanza")
    parser.add_argument("--quick", action="store_true", help="300 requests, 10 s of load")
    parser.add_argument("--callgrind", type=int, metavar="N",
                        help="count instructions per request over N requests instead")
    args = parser.parse_args()
    requests = 300 if args.quick else args.requests
    seconds = 10 if args.quick else args.seconds
    keyhole = benchlib.keyhole_binary(args.keyhole)
    relay = args.relay or benchlib.release_example("keyhole-agent", "tcp-relay")
    if args.callgrind:
        return callgrind(args, keyhole, relay)

    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as workdir:
        bao = benchlib.Bao(workdir)
        procs = []
        try:
            bao.request("POST", "secret/data/app", {"data": {"username": "app", "password": "hunter2"}})
            token_file = os.path.join(workdir, "token")
            with open(token_file, "w") as f:
                f.write(bao.token)
            ports = {"keyhole-agent": benchlib.free_port(), "bao agent": benchlib.free_port()}
            argv = {
                "keyhole-agent": lambda path: [keyhole, "--config", path],
                "bao agent": lambda path: ["bao", "agent", f"-config={path}"],
            }
            pids = {}
            for name, port in ports.items():
                path = os.path.join(workdir, f"{name.replace(' ', '-')}.hcl")
                with open(path, "w") as f:
                    f.write(config(bao, token_file, port, args.cache))
                log = open(os.path.join(workdir, f"{name.replace(' ', '-')}.log"), "wb")
                procs.append(start(argv[name](path), log, port))
                pids[name] = procs[-1].pid

            relay_port = benchlib.free_port()
            log = open(os.path.join(workdir, "tcp-relay.log"), "wb")
            procs.append(start([relay, "--listen", f"127.0.0.1:{relay_port}",
                                "--to", f"127.0.0.1:{bao.port}"], log, relay_port, bao.token))

            targets = {
                "direct": (http.client.HTTPConnection("127.0.0.1", bao.port, timeout=10), bao.token),
                "tcp relay": (http.client.HTTPConnection("127.0.0.1", relay_port, timeout=10), bao.token),
                "keyhole-agent": (http.client.HTTPConnection("127.0.0.1", ports["keyhole-agent"], timeout=10), None),
                "bao agent": (http.client.HTTPConnection("127.0.0.1", ports["bao agent"], timeout=10), None),
            }
            for conn, token in targets.values():
                for _ in range(50):
                    read(conn, token)
            times = {name: [] for name in targets}
            for _ in range(requests):
                for name, (conn, token) in targets.items():
                    times[name].append(read(conn, token))
            memory = {name: sustained(targets[name][0], args.rate, seconds, pid)
                      for name, pid in pids.items()}
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
            bao.stop()

    direct = benchlib.median(times["direct"])
    ms = lambda s: f"{s * 1000:.3f}"
    rows = []
    for name, values in times.items():
        med = benchlib.median(values)
        overhead = "" if name == "direct" else ms(med - direct)
        rows.append([name, len(values), ms(med), ms(percentile(values, 0.9)), ms(percentile(values, 0.99)), overhead])
    print(benchlib.conditions())
    print()
    print(benchlib.table(
        ["target", "requests", "median (ms)", "p90 (ms)", "p99 (ms)", "median overhead (ms)"],
        rows, "lrrrrr"))
    print()
    print(f"RSS while proxying {args.rate} requests/s for {seconds} s:")
    print()
    mib = lambda v: f"{v:.1f}"
    print(benchlib.table(
        ["agent", "RSS before (MiB)", "RSS max (MiB)", "RSS end (MiB)"],
        [[name, mib(s[0]), mib(max(s)), mib(s[-1])] for name, s in memory.items()],
        "lrrr"))


if __name__ == "__main__":
    sys.exit(main())
