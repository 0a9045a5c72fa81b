#!/usr/bin/env python3
"""Sidecar benchmark: `bao agent` and `keyhole-agent` keeping N files current.

One OpenBao dev server with a file audit log, N KV v2 secrets, and one Vault
Agent config (JWT login, N templates, `static_secret_render_interval = 1s`).
Each agent runs in turn as a sidecar:

1. rotating: a writer changes every secret once a second, so every file is
   re-rendered every second, for --seconds;
2. quiet: nothing changes, for --quiet-seconds.

Every second the agent's RSS (VmRSS) and CPU time are sampled from /proc.
The audit log gives the Vault requests made with the agent's token, per
one-second cycle. Prints a table and writes an RSS-over-time SVG.

Usage: scripts/bench-agent-sidecar.py [--templates 50] [--seconds 600]
       [--quiet-seconds 60] [--svg docs/bench-sidecar-rss.svg]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import benchlib

TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def agent_requests(audit_log, start, end):
    """Requests made with a jwt-login token between two audit-log offsets."""
    count = 0
    with open(audit_log) as f:
        f.seek(start)
        for line in f.read(end - start).splitlines():
            entry = json.loads(line)
            name = (entry.get("auth") or {}).get("display_name", "")
            if entry.get("type") == "request" and name.startswith("jwt"):
                count += 1
    return count


def phase(bao, pid, n, seconds, rotate, samples, t0):
    """Runs one phase; returns (CPU share of one core, audit offsets)."""
    cpu_start = cpu_seconds(pid)
    wall_start = time.monotonic()
    for second in range(seconds):
        tick = wall_start + second + 1
        if rotate:
            for i in range(n):
                bao.put_secret(i, f"rotated-{second}-{i}")
        samples.append((time.monotonic() - t0, rss_mib(pid)))
        time.sleep(max(0.0, tick - time.monotonic()))
    return (cpu_seconds(pid) - cpu_start) / (time.monotonic() - wall_start)


def run_agent(name, argv, bao, n, out, audit_log, args):
    os.makedirs(out, exist_ok=True)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(os.listdir(out)) < n:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{name} did not render {n} files")
        time.sleep(0.1)
    samples = []
    t0 = time.monotonic()
    offset = os.path.getsize(audit_log)
    busy = phase(bao, proc.pid, n, args.seconds, True, samples, t0)
    middle = os.path.getsize(audit_log)
    quiet = phase(bao, proc.pid, n, args.quiet_seconds, False, samples, t0)
    end = os.path.getsize(audit_log)
    proc.terminate()
    proc.wait()
    return {
        "samples": samples,
        "cpu_busy": busy,
        "cpu_quiet": quiet,
        "req_busy": agent_requests(audit_log, offset, middle) / args.seconds,
        "req_quiet": agent_requests(audit_log, middle, end) / max(args.quiet_seconds, 1),
    }


def svg(results, path, title):
    width, height, pad = 720, 360, 50
    t_max = max(t for r in results.values() for t, _ in r["samples"]) or 1
    m_max = max(m for r in results.values() for _, m in r["samples"]) * 1.1 or 1
    colors = {"bao agent": "#c0392b", "keyhole-agent": "#2471a3"}

    def xy(t, m):
        return (pad + t / t_max * (width - 2 * pad), height - pad - m / m_max * (height - 2 * pad))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{pad}" y="20">{title}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">seconds</text>',
             f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" '
             f'text-anchor="middle">RSS (MiB)</text>']
    for i in range(5):
        m = m_max * i / 4
        _, y = xy(0, m)
        parts.append(f'<text x="{pad - 6}" y="{y + 4}" text-anchor="end">{m:.0f}</text>')
    for row, (name, result) in enumerate(results.items()):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(t, m) for t, m in result["samples"]))
        parts.append(f'<polyline fill="none" stroke="{colors[name]}" stroke-width="1.5" points="{points}"/>')
        parts.append(f'<text x="{width - pad - 120}" y="{pad + 16 * row}" fill="{colors[name]}">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--quiet-seconds", type=int, default=60)
    parser.add_argument("--svg", default=os.path.join(benchlib.ROOT, "docs/bench-sidecar-rss.svg"))
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    args = parser.parse_args()
    keyhole = benchlib.keyhole_binary(args.keyhole)
    n = args.templates

    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory(dir=tmpfs) as outdir:
        audit_log = os.path.join(workdir, "audit.log")
        bao = benchlib.Bao(workdir, audit_log=audit_log)
        try:
            jwt = benchlib.setup(bao, workdir, n)
            results = {}
            for name in ("bao agent", "keyhole-agent"):
                out = os.path.join(outdir, name.replace(" ", "-"))
                config = os.path.join(workdir, f"{name.replace(' ', '-')}.hcl")
                benchlib.write_config(config, bao, jwt, n, out, init_mode=False, static_interval="1s")
                argv = (["bao", "agent", f"-config={config}"] if name == "bao agent"
                        else [keyhole, "--config", config])
                results[name] = run_agent(name, argv, bao, n, out, audit_log, args)
        finally:
            bao.stop()

    print(f"{benchlib.bao_version()}; {n} templates; {args.seconds}s rotating every second, "
          f"then {args.quiet_seconds}s quiet\n")
    print("| agent | RSS first / last / max (MiB) | CPU, rotating | CPU, quiet "
          "| Vault requests per cycle, rotating | per cycle, quiet |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in results.items():
        rss = [m for _, m in r["samples"]]
        print(f"| {name} | {rss[0]:.1f} / {rss[-1]:.1f} / {max(rss):.1f} | "
              f"{r['cpu_busy'] * 100:.2f}% | {r['cpu_quiet'] * 100:.2f}% | "
              f"{r['req_busy']:.1f} | {r['req_quiet']:.1f} |")
    svg(results, args.svg, f"RSS, {n} templates re-rendered every second, then quiet")
    print(f"\nRSS plot: {os.path.relpath(args.svg, benchlib.ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
