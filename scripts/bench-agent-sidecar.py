#!/usr/bin/env python3
"""Sidecar benchmark: `bao agent` and `keyhole-agent` side by side, keeping N
files current against the same OpenBao at the same time.

One OpenBao dev server with a file audit log, N KV v2 secrets, and two JWT
roles, `bench-keyhole` and `bench-bao`, one per agent: every audit entry made
with an agent's token carries its role in `auth.metadata.role`, which is how
the requests of the two agents are told apart. Both agents get the same
Vault Agent config except for the role (N templates,
`static_secret_render_interval = 1s`) and run at the same time:

1. rotating: a writer changes every secret once a second, so every file is
   due for a re-render every second, for --seconds;
2. quiet: nothing changes, for --quiet-seconds.

Every second both agents' RSS (VmRSS) and CPU time are sampled from /proc.
At the end every file of both agents must hold the last written value.
Prints a Markdown table (RSS start/end/max and slope, CPU, Vault requests per
one-second rotation cycle from the audit log) and writes one SVG with both
agents' RSS over time.

Usage: scripts/bench-agent-sidecar.py [--templates 50] [--seconds 600]
       [--quiet-seconds 60] [--svg docs/bench-sidecar-rss.svg] [--quick]
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
AGENTS = ("keyhole-agent", "bao agent")
ROLES = {"keyhole-agent": "bench-keyhole", "bao agent": "bench-bao"}
COLORS = {"keyhole-agent": "#2471a3", "bao agent": "#c0392b"}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def requests_by_role(audit_log, start, end):
    """Vault requests per JWT role between two audit-log offsets: every
    request made with a role's token, plus its logins (a login's request
    entry has no token yet; its response entry names the role)."""
    counts = {}
    with open(audit_log) as f:
        f.seek(start)
        for line in f.read(end - start).splitlines():
            entry = json.loads(line)
            role = ((entry.get("auth") or {}).get("metadata") or {}).get("role")
            path = (entry.get("request") or {}).get("path", "")
            login = path.startswith("auth/") and path.endswith("/login")
            if role and (entry.get("type") == "request") != login:
                counts[role] = counts.get(role, 0) + 1
    return counts


def slope_kib_per_min(samples):
    """Least-squares slope of RSS over time."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mm = sum(m for _, m in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    cov = sum((t - mt) * (m - mm) for t, m in samples)
    return cov / var * 1024 * 60 if var else 0.0


def phase(bao, pids, n, seconds, rotate, samples, t0, label):
    """Runs one phase, sampling every second; returns each agent's CPU share
    of one core and the last value written (or None)."""
    cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wall_start = time.monotonic()
    for second in range(seconds):
        if rotate:
            bao.put_secrets(((i, f"{label}-{second}-{i}") for i in range(n)), workers=4)
        now = time.monotonic() - t0
        for name, pid in pids.items():
            samples[name].append((now, benchlib.rss_mib(pid)))
        time.sleep(max(0.0, wall_start + second + 1 - time.monotonic()))
    elapsed = time.monotonic() - wall_start
    return {name: (cpu_seconds(pid) - cpu_start[name]) / elapsed for name, pid in pids.items()}


def wait_rendered(procs, outs, n, timeout=60):
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        while len(os.listdir(outs[name])) < n:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"{name} did not render {n} files")
            time.sleep(0.1)


def stale_files(out, n, expected):
    """How many of the n files do not hold `expected(i)`."""
    stale = 0
    for i in range(n):
        with open(os.path.join(out, f"app-{i}.txt")) as f:
            if f.read() != f"user-{i}:{expected(i)}\n":
                stale += 1
    return stale


def svg(results, path, title, boundary):
    width, height, pad = 760, 380, 56
    t_max = max(t for r in results.values() for t, _ in r["samples"]) or 1
    m_max = max(m for r in results.values() for _, m in r["samples"]) * 1.1 or 1

    def xy(t, m):
        return (pad + t / t_max * (width - 2 * pad), height - pad - m / m_max * (height - 2 * pad))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{pad}" y="22" font-size="13">{title}</text>']
    for i in range(6):
        m = m_max * i / 5
        _, y = xy(0, m)
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{m:.0f}</text>')
    step = max(1, round(t_max / 8 / 30) * 30) if t_max > 60 else 10
    for t in range(0, int(t_max) + 1, step):
        x, _ = xy(t, 0)
        parts.append(f'<text x="{x:.1f}" y="{height - pad + 16}" text-anchor="middle">{t}</text>')
    parts += [
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 14}" text-anchor="middle">seconds since both agents rendered</text>',
        f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" '
        f'text-anchor="middle">RSS (MiB)</text>']
    if boundary < t_max:
        x, _ = xy(boundary, 0)
        parts.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{height - pad}" '
                     'stroke="#888" stroke-dasharray="4 4"/>')
        parts.append(f'<text x="{x - 4:.1f}" y="{pad + 12}" text-anchor="end" fill="#555">rotating</text>')
        parts.append(f'<text x="{x + 4:.1f}" y="{pad + 12}" fill="#555">quiet</text>')
    for row, (name, result) in enumerate(results.items()):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(t, m) for t, m in result["samples"]))
        parts.append(f'<polyline fill="none" stroke="{COLORS[name]}" stroke-width="1.5" points="{points}"/>')
        parts.append(f'<text x="{width - pad - 110}" y="{pad + 34 + 16 * row}" '
                     f'fill="{COLORS[name]}">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=600, help="rotating phase")
    parser.add_argument("--quiet-seconds", type=int, default=60, help="quiet phase after it")
    parser.add_argument("--quick", action="store_true", help="50 s rotating + 10 s quiet: a smoke run")
    parser.add_argument("--svg", default=os.path.join(benchlib.ROOT, "docs/bench-sidecar-rss.svg"))
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.quiet_seconds = 50, 10
    keyhole = benchlib.keyhole_binary(args.keyhole)
    n = args.templates
    conditions = benchlib.conditions()

    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory(dir=tmpfs) as outdir:
        audit_log = os.path.join(workdir, "audit.log")
        bao = benchlib.Bao(workdir, audit_log=audit_log)
        procs = {}
        try:
            jwts, _ = benchlib.setup(bao, workdir, n, roles=ROLES.values())
            outs = {}
            for name in AGENTS:
                slug = name.replace(" ", "-")
                outs[name] = os.path.join(outdir, slug)
                os.makedirs(outs[name])
                config = os.path.join(workdir, f"{slug}.hcl")
                benchlib.write_config(config, bao, jwts[ROLES[name]], n, outs[name], init_mode=False,
                                      static_interval="1s", role=ROLES[name])
                argv = ([keyhole, "--config", config] if name == "keyhole-agent"
                        else ["bao", "agent", f"-config={config}"])
                log = open(os.path.join(workdir, f"{slug}.log"), "wb")
                procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            wait_rendered(procs, outs, n)
            pids = {name: proc.pid for name, proc in procs.items()}
            samples = {name: [] for name in AGENTS}
            t0 = time.monotonic()
            offset = os.path.getsize(audit_log)
            busy = phase(bao, pids, n, args.seconds, True, samples, t0, "rotated")
            middle = os.path.getsize(audit_log)
            boundary = time.monotonic() - t0
            quiet = phase(bao, pids, n, args.quiet_seconds, False, samples, t0, "")
            end = os.path.getsize(audit_log)
            # Both agents re-read every second: give them a moment to catch up
            # with the last write when there is no quiet phase.
            time.sleep(max(0, 3 - args.quiet_seconds))
            last = args.seconds - 1
            stale = {name: stale_files(outs[name], n, lambda i: f"rotated-{last}-{i}") for name in AGENTS}
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited early ({proc.returncode}); see its log")
            req_busy = requests_by_role(audit_log, offset, middle)
            req_quiet = requests_by_role(audit_log, middle, end)
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait()
            bao.stop()

    results = {}
    for name in AGENTS:
        s = samples[name]
        rotating = [x for x in s if x[0] <= boundary]
        results[name] = {"samples": s, "cells": [
            name,
            f"{s[0][1]:.1f} / {s[-1][1]:.1f} / {max(m for _, m in s):.1f}",
            f"{slope_kib_per_min(rotating):+.1f}",
            f"{slope_kib_per_min(rotating[len(rotating) // 2:]):+.1f}",
            f"{busy[name] * 100:.2f}%",
            f"{quiet[name] * 100:.2f}%" if args.quiet_seconds else "–",
            f"{req_busy.get(ROLES[name], 0) / args.seconds:.1f}",
            f"{req_quiet.get(ROLES[name], 0) / args.quiet_seconds:.1f}" if args.quiet_seconds else "–",
            f"{stale[name]}/{n}",
        ]}
    k, b = (req_busy.get(ROLES[a], 0) for a in AGENTS)

    print(f"Sidecar mode, both agents at once. {conditions}.")
    print(f"{n} templates, static_secret_render_interval = 1s; {args.seconds} s with every secret "
          f"rewritten once a second, then {args.quiet_seconds} s quiet. RSS sampled every second. "
          "Requests per one-second cycle from the audit log.\n")
    print(benchlib.table(
        ["agent", "RSS start / end / max (MiB)", "RSS slope, rotating (KiB/min)",
         "slope, 2nd half (KiB/min)", "CPU rotating (one core)", "CPU quiet",
         "requests per cycle, rotating", "per cycle, quiet", "stale files at end"],
        [results[name]["cells"] for name in AGENTS], "l" + "r" * 8))
    print(f"\nRequests while rotating: keyhole-agent {k}, bao agent {b} "
          f"({'keyhole issues no more' if k <= b else 'keyhole issues MORE'}).")
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    svg(results, args.svg,
        f"RSS of both agents, {n} templates, {args.seconds} s rotating every second, "
        f"then {args.quiet_seconds} s quiet ({stamp})", boundary)
    print(f"RSS plot: {os.path.relpath(args.svg, benchlib.ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
