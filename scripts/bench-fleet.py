#!/usr/bin/env python3
"""Fleet benchmark: many keyhole-agent sidecars and some `bao agent`s against
one OpenBao with raft storage and one PostgreSQL, through restarts.

Every agent logs in as its own pod through the `jwt` auth method (one minted
service-account-shaped token per agent, subject `system:serviceaccount:
fleet:<kind>-<i>`; role `keyhole` or `bao` tells the two kinds apart in the
audit log) and keeps three files current: two KV v2 secrets
(`secret/shared/a`, `secret/shared/b`) and one PostgreSQL credential from
`database/creds/<role>`, whose lease has a short TTL and max TTL so that
renewals and re-fetches happen during the run. Both kinds get the same Vault
Agent config; the keyhole agents also get `cache { persist "kubernetes" }`
with a directory of their own, as the injector configures a sidecar.

Phases:

1. start: the keyhole agents are started in batches, then the bao agents;
   the time until every file of each kind exists;
2. steady state for --steady seconds;
3. OpenBao stopped for --downtime seconds, then started again with its
   data (and unsealed);
4. OpenBao replaced by an empty server (new raft directory, init, unseal),
   then re-seeded: same jwt signing key and roles, new KV values, the
   database role again;
5. kill -9 of 10% of each kind's agents, whose output files are removed;
   they are started again at once.

A file set is *current* when both KV files hold the values the server holds
now and the database file names a PostgreSQL role that exists and whose
VALID UNTIL is still ahead (so the credential logs in); after phase 4 that
role must also have been created by the new server (the username carries
its creation time). Phases 3 to 5 report the time from the server being
back (seeded, for phase 4; restarted, for phase 5) until every agent's
files are current.

Measured from OpenBao's file audit log: Vault requests per agent per
minute (every request made with an agent's token, plus its logins), logins
per second (plotted as an SVG), new logins per phase. Sampled every few
seconds: live leases per kind (`sys/leases/lookup`), the agents' and
OpenBao's RSS and CPU from /proc. Prints Markdown tables.

Usage: scripts/bench-fleet.py [--agents 500] [--bao-agents 50] [--steady 600]
       [--downtime 20] [--quick] [--keyhole PATH] [--svg docs/bench-fleet-logins.svg] [--keep]
"""

import argparse
import collections
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import benchlib

TICK = os.sysconf("SC_CLK_TCK")
KINDS = ("keyhole", "bao")
LABELS = {"keyhole": "keyhole-agent", "bao": "bao agent"}
COLORS = {"keyhole": "#2471a3", "bao": "#c0392b"}
DB_TTL, DB_MAX_TTL = "90s", "300s"
# The database engine's usernames carry their creation time, so a file can
# be told to hold a credential of the current server.
USERNAME_TEMPLATE = "v-{{.RoleName}}-{{unix_time}}-{{random 8 | lowercase}}"
CURRENT_TIMEOUT = 120


def status_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def raise_nofile():
    """Lets OpenBao hold a connection per agent."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class RaftBao:
    """`bao server` with raft storage in `workdir/raft`, a tcp listener on a
    free loopback port and a file audit device (from its config file, so
    every server of the run appends to the same log)."""

    def __init__(self, workdir, audit_log):
        self.workdir = workdir
        self.data = os.path.join(workdir, "raft")
        os.makedirs(self.data)
        self.port = benchlib.free_port_pair()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(workdir, "bao-server.hcl")
        with open(self.config, "w") as f:
            f.write(f'storage "raft" {{\n  path = "{self.data}"\n  node_id = "fleet"\n'
                    "  performance_multiplier = 1\n}\n"
                    f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
                    f'  cluster_address = "127.0.0.1:{self.port + 1}"\n  tls_disable = true\n}}\n'
                    f'api_addr = "{self.addr}"\ncluster_addr = "http://127.0.0.1:{self.port + 1}"\n'
                    "disable_mlock = true\nui = false\n"
                    f'audit "file" "file" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n')
        self.proc = None
        self.token = None
        self.unseal_key = None

    def request(self, method, path, body=None, ok404=False):
        data = json.dumps(body).encode() if body is not None else None
        for _ in range(100):
            req = urllib.request.Request(f"{self.addr}/v1/{path}", data=data, method=method,
                                         headers={"X-Vault-Token": self.token or ""})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    text = resp.read()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as err:
                if ok404 and err.code == 404:
                    return None
                text = err.read()
                # A new KV v2 mount refuses writes while it sets itself up.
                if b"Upgrading from non-versioned to versioned data" not in text:
                    raise SystemExit(f"{method} {path}: HTTP {err.code}: {text[:300]!r}")
                time.sleep(0.1)
        raise SystemExit(f"{method} {path}: the KV mount did not finish upgrading")

    def start(self):
        log = open(os.path.join(self.workdir, "bao-server.log"), "ab")
        self.proc = subprocess.Popen(["bao", "server", f"-config={self.config}"], stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        for _ in range(400):
            try:
                urllib.request.urlopen(f"{self.addr}/v1/sys/health", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # 501 not initialised, 503 sealed: listening
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("OpenBao exited; see bao-server.log")
                time.sleep(0.05)
        raise SystemExit("OpenBao did not listen")

    def init(self):
        reply = self.request("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        self.unseal_key, self.token = reply["keys_base64"][0], reply["root_token"]

    def unseal(self):
        self.request("PUT", "sys/unseal", {"key": self.unseal_key})
        for _ in range(400):
            try:
                urllib.request.urlopen(f"{self.addr}/v1/sys/health", timeout=2)
                return
            except (urllib.error.HTTPError, OSError):
                time.sleep(0.05)
        raise SystemExit("OpenBao did not become active")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def wipe(self):
        shutil.rmtree(self.data)
        os.makedirs(self.data)

    def live_leases(self, role):
        reply = self.request("LIST", f"sys/leases/lookup/database/creds/{role}/", ok404=True)
        return len(reply["data"]["keys"]) if reply else 0


class Postgres:
    """A throwaway PostgreSQL cluster on a loopback port (run as user
    `postgres` when this script runs as root, since initdb refuses root)."""

    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        os.makedirs(self.dir)
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        self.superuser, self.password = "keyhole", "fleet-bench-pw"
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password)
        if self.user:
            shutil.chown(pwfile, self.user, self.user)
        self.port = benchlib.free_port()
        data = os.path.join(self.dir, "data")
        subprocess.run([f"{self.BIN}/initdb", "-D", data, "-U", self.superuser, "--auth-local=trust",
                        "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
                        f"--pwfile={pwfile}"], user=self.user, cwd=self.dir, check=True,
                       capture_output=True)
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            [f"{self.BIN}/postgres", "-D", data, "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            user=self.user, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(600):
            if subprocess.run(["psql", *self._conn(), "-c", "SELECT 1"],
                              capture_output=True, env=self._env()).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("PostgreSQL did not start")

    def _conn(self):
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.superuser, "-d", "postgres",
                "-Atq"]

    def _env(self):
        return {**os.environ, "PGPASSWORD": self.password}

    def valid_roles(self):
        """{role name: VALID UNTIL as a Unix time} of the engine's users."""
        out = subprocess.run(
            ["psql", *self._conn(), "-F", " ", "-c",
             "SELECT rolname, extract(epoch FROM rolvaliduntil) FROM pg_roles "
             "WHERE rolname LIKE 'v-%' AND rolcanlogin"],
            capture_output=True, text=True, env=self._env(), check=True).stdout
        roles = {}
        for line in out.splitlines():
            name, until = line.split(" ")
            roles[name] = float(until) if until else float("inf")
        return roles

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: no shared memory left behind
            self.proc.wait()


def seed(bao, pg, pubkey, generation):
    """Mounts, policy, jwt auth and roles, KV values and the database roles
    on a fresh server. KV values name the `generation`."""
    bao.request("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    for name in ("a", "b"):
        bao.request("POST", f"secret/data/shared/{name}", {"data": {"value": kv_value(generation, name)}})
    bao.request("PUT", "sys/policies/acl/fleet", {"policy": (
        'path "secret/data/shared/*" { capabilities = ["read"] }\n'
        'path "database/creds/*" { capabilities = ["read"] }\n')})
    bao.request("POST", "sys/auth/jwt", {"type": "jwt"})
    bao.request("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [pubkey]})
    for kind in KINDS:
        bao.request("POST", f"auth/jwt/role/{kind}", {
            "role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
            "token_policies": ["fleet"], "token_ttl": "1h"})
    bao.request("POST", "sys/mounts/database", {"type": "database"})
    bao.request("POST", "database/config/postgres", {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": (f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{pg.port}"
                           "/postgres?sslmode=disable"),
        "username": pg.superuser, "password": pg.password,
        "password_authentication": "scram-sha-256", "allowed_roles": "*",
        "username_template": USERNAME_TEMPLATE, "max_open_connections": 8})
    for kind in KINDS:
        bao.request("POST", f"database/roles/{kind}", {
            "db_name": "postgres",
            "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                                    "VALID UNTIL '{{expiration}}';"],
            "default_ttl": DB_TTL, "max_ttl": DB_MAX_TTL})


def kv_value(generation, name):
    return f"gen{generation}-{name}"


def agent_config(path, bao, kind, agent_dir, persist):
    """The Vault Agent config both kinds run; `persist` adds keyhole's
    persistent cache."""
    out = os.path.join(agent_dir, "out")
    kv = ('{{ with secret \\"secret/data/shared/%s\\" }}{{ .Data.data.value }}{{ end }}')
    db = ('{{ with secret \\"database/creds/%s\\" }}{{ .Data.username }}:{{ .Data.password }}'
          '{{ end }}') % kind
    lines = [
        f'vault {{\n  address = "{bao.addr}"\n}}',
        "auto_auth {\n  method \"jwt\" {\n    config = {\n"
        f'      role = "{kind}"\n      path = "{agent_dir}/jwt"\n'
        "      remove_jwt_after_reading = false\n    }\n  }\n}",
        f'template {{\n  destination = "{out}/a.txt"\n  contents = "{kv % "a"}"\n}}',
        f'template {{\n  destination = "{out}/b.txt"\n  contents = "{kv % "b"}"\n}}',
        f'template {{\n  destination = "{out}/db.txt"\n  contents = "{db}"\n}}',
    ]
    if persist:
        lines.append(f'cache {{\n  persist "kubernetes" {{\n    path = "{agent_dir}/persist"\n'
                     f'    service_account_token_file = "{agent_dir}/jwt"\n'
                     "    keep_after_import = true\n  }\n}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Agent:
    """One agent of either kind: its directory (config, JWT, persist
    directory, output files, log) and its process."""

    def __init__(self, kind, i, root, bao, key, argv_of):
        self.kind, self.i = kind, i
        self.dir = os.path.join(root, f"{kind}-{i}")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out)
        os.makedirs(os.path.join(self.dir, "persist"))
        with open(os.path.join(self.dir, "jwt"), "w") as f:
            f.write(benchlib.mint_jwt(key, "vault", f"system:serviceaccount:fleet:{kind}-{i}"))
        self.config = os.path.join(self.dir, "agent.hcl")
        agent_config(self.config, bao, kind, self.dir, persist=kind == "keyhole")
        self.argv = argv_of(self.config)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "agent.log"), "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def read(self, name):
        try:
            with open(os.path.join(self.out, name)) as f:
                return f.read()
        except FileNotFoundError:
            return None


def is_current(agent, generation, roles, issued_after):
    if agent.read("a.txt") != kv_value(generation, "a"):
        return False
    if agent.read("b.txt") != kv_value(generation, "b"):
        return False
    db = agent.read("db.txt")
    if not db or ":" not in db:
        return False
    user = db.split(":", 1)[0]
    until = roles.get(user)
    if until is None or until <= time.time():
        return False
    return int(user.split("-")[2]) >= issued_after


def wait_current(agents, pg, generation, issued_after=0, since=None, timeout=CURRENT_TIMEOUT):
    """Seconds from `since` (a monotonic time, default now) until every
    agent's files are current, per kind (None for a kind without agents;
    a sentence saying how many were not current after `timeout`)."""
    start = time.monotonic() if since is None else since
    pending = {kind: [a for a in agents if a.kind == kind] for kind in KINDS}
    done = {kind: None for kind in KINDS}
    while any(pending.values()) and time.monotonic() - start < timeout:
        roles = pg.valid_roles()
        for kind in KINDS:
            if not pending[kind]:
                continue
            pending[kind] = [a for a in pending[kind] if not is_current(a, generation, roles, issued_after)]
            if not pending[kind]:
                done[kind] = time.monotonic() - start
        time.sleep(0.25)
    for kind, rest in pending.items():
        if rest:
            total = sum(1 for a in agents if a.kind == kind)
            done[kind] = f"{len(rest)} of {total} not current after {timeout} s"
            print(f"warning: {done[kind]} ({LABELS[kind]}, e.g. {rest[0].dir})", file=sys.stderr)
    return done


class Sampler(threading.Thread):
    """Every `period` seconds: live leases per kind, each kind's total RSS,
    OpenBao's RSS. Stops sampling leases while OpenBao is down."""

    def __init__(self, bao, agents, t0, period=5.0):
        super().__init__(daemon=True)
        self.bao, self.agents, self.t0, self.period = bao, agents, t0, period
        self.samples = []
        self.phase = "start"
        self.paused = threading.Event()
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.period):
            sample = {"t": time.monotonic() - self.t0, "phase": self.phase}
            for kind in KINDS:
                pids = [a.proc.pid for a in self.agents if a.kind == kind and a.proc]
                sample[f"rss_{kind}"] = sum(status_kib(p) for p in pids) / 1024
            sample["rss_bao_server"] = status_kib(self.bao.proc.pid) / 1024
            if not self.paused.is_set():
                try:
                    for kind in KINDS:
                        sample[f"leases_{kind}"] = self.bao.live_leases(kind)
                except (SystemExit, OSError):
                    pass
            self.samples.append(sample)


def audit_entries(path):
    with open(path) as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def audit_time(entry):
    """The entry's wall-clock time as a Unix time (microseconds kept)."""
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", entry["time"]).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def audit_summary(path, windows):
    """Per kind: requests and successful logins inside each named window
    (start, end) of Unix times, and every login's time."""
    requests = {w: collections.Counter() for w in windows}
    logins = {w: collections.Counter() for w in windows}
    login_times = {kind: [] for kind in KINDS}
    for entry in audit_entries(path):
        kind = ((entry.get("auth") or {}).get("metadata") or {}).get("role")
        if kind not in KINDS:
            continue
        req_path = (entry.get("request") or {}).get("path", "")
        login = req_path.startswith("auth/") and req_path.endswith("/login")
        is_request = entry.get("type") == "request"
        if is_request == login:
            continue  # a login counts by its response, which names the role
        t = audit_time(entry)
        if login:
            login_times[kind].append(t)
        for name, (start, end) in windows.items():
            if start <= t < end:
                requests[name][kind] += 1
                if login:
                    logins[name][kind] += 1
    return requests, logins, login_times


def max_per_second(times, start, end):
    counts = collections.Counter(int(t) for t in times if start <= t < end)
    return max(counts.values(), default=0)


def svg(login_times, t0, t_end, boundaries, path, title):
    """Logins per second of each kind over the run, phases marked."""
    width, height, pad = 760, 380, 56
    seconds = int(t_end - t0) + 1
    series = {}
    for kind in KINDS:
        counts = collections.Counter(int(t - t0) for t in login_times[kind] if t0 <= t < t_end)
        series[kind] = [counts.get(s, 0) for s in range(seconds)]
    y_max = max(max(s, default=0) for s in series.values()) * 1.1 or 1
    t_max = seconds or 1

    def xy(t, v):
        return (pad + t / t_max * (width - 2 * pad), height - pad - v / y_max * (height - 2 * pad))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{pad}" y="22" font-size="13">{title}</text>']
    for i in range(6):
        v = y_max * i / 5
        _, y = xy(0, v)
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    step = max(10, round(t_max / 8 / 30) * 30)
    for t in range(0, t_max + 1, step):
        x, _ = xy(t, 0)
        parts.append(f'<text x="{x:.1f}" y="{height - pad + 16}" text-anchor="middle">{t}</text>')
    parts += [
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 14}" text-anchor="middle">seconds since the first agent started</text>',
        f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" '
        'text-anchor="middle">successful logins per second</text>']
    for label, t in boundaries:
        x, _ = xy(t - t0, 0)
        parts.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{height - pad}" '
                     'stroke="#888" stroke-dasharray="4 4"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="{pad + 12}" fill="#555">{label}</text>')
    for row, kind in enumerate(KINDS):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in
                          (xy(s, v) for s, v in enumerate(series[kind])))
        parts.append(f'<polyline fill="none" stroke="{COLORS[kind]}" stroke-width="1.2" points="{points}"/>')
        parts.append(f'<text x="{width - pad - 110}" y="{pad + 34 + 16 * row}" '
                     f'fill="{COLORS[kind]}">{LABELS[kind]}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def fmt_s(value):
    return value if isinstance(value, str) else "–" if value is None else f"{value:.1f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=500, help="keyhole-agent sidecars")
    parser.add_argument("--bao-agents", type=int, default=50, help="bao agents, for comparison")
    parser.add_argument("--steady", type=int, default=600, help="seconds of steady state")
    parser.add_argument("--downtime", type=int, default=20,
                        help="seconds OpenBao stays stopped in phase 3")
    parser.add_argument("--quick", action="store_true",
                        help="20 keyhole agents, 5 bao agents, 60 s steady: a smoke run")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directories (agent logs, audit log) and print them")
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    parser.add_argument("--svg", default=os.path.join(benchlib.ROOT, "docs/bench-fleet-logins.svg"),
                        help="where to write the logins-per-second plot")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.bao_agents, args.steady = 20, 5, 60
    keyhole = os.path.abspath(benchlib.keyhole_binary(args.keyhole))
    conditions = benchlib.conditions()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    workdir = tempfile.mkdtemp(prefix="keyhole-fleet-")
    agentroot = tempfile.mkdtemp(prefix="keyhole-fleet-agents-", dir=tmpfs)
    os.chmod(workdir, 0o755)
    audit_log = os.path.join(workdir, "audit.log")
    bao, pg, agents, sampler, measured = None, None, [], None, False
    try:
        pg = Postgres(workdir)
        bao = RaftBao(workdir, audit_log)
        bao.start()
        bao.init()
        bao.unseal()
        key = os.path.join(workdir, "jwt.key")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        pubkey = subprocess.run(["openssl", "rsa", "-in", key, "-pubout"], check=True,
                                capture_output=True, text=True).stdout
        seed(bao, pg, pubkey, 1)
        argv_of = {"keyhole": lambda c: [keyhole, "--config", c],
                   "bao": lambda c: ["bao", "agent", f"-config={c}"]}
        counts = {"keyhole": args.agents, "bao": args.bao_agents}
        agents = [Agent(kind, i, agentroot, bao, key, argv_of[kind])
                  for kind in KINDS for i in range(counts[kind])]
        time.sleep(1.1)  # the JWTs' nbf is their minting second
        marks = {}

        # Phase 1: start, keyhole agents first, then the bao agents.
        t0 = time.time()
        t0_mono = time.monotonic()
        sampler = Sampler(bao, agents, t0_mono)
        sampler.start()
        start_times = {}
        for kind in KINDS:
            marks[f"start {kind}"] = time.time()
            since = time.monotonic()
            fleet = [a for a in agents if a.kind == kind]
            for n in range(0, len(fleet), 25):
                for agent in fleet[n:n + 25]:
                    agent.start()
                time.sleep(0.1)
            start_times[kind] = wait_current(fleet, pg, 1, since=since)[kind]
        marks["started"] = time.time()
        cpu_bao = {"started": cpu_seconds(bao.proc.pid)}

        # Phase 2: steady state.
        sampler.phase = "steady"
        time.sleep(args.steady)
        marks["steady end"] = time.time()
        cpu_bao["steady end"] = cpu_seconds(bao.proc.pid)

        # Phase 3: restart with data.
        sampler.phase = "restart"
        sampler.paused.set()
        marks["restart"] = time.time()
        db_before = {a.dir: a.read("db.txt") for a in agents}
        bao.stop()
        time.sleep(args.downtime)
        bao.start()
        bao.unseal()
        sampler.paused.clear()
        marks["restarted"] = time.time()
        recovered_restart = wait_current(agents, pg, 1)
        time.sleep(30)
        marks["restart end"] = time.time()
        new_credentials = collections.Counter(a.kind for a in agents if a.read("db.txt") != db_before[a.dir])

        # Phase 4: an empty server, then re-seeded with new KV values.
        sampler.phase = "empty"
        sampler.paused.set()
        marks["empty"] = time.time()
        bao.stop()
        bao.wipe()
        bao.start()
        bao.init()
        bao.unseal()
        issued_after = int(time.time())
        seed(bao, pg, pubkey, 2)
        sampler.paused.clear()
        marks["seeded"] = time.time()
        recovered_empty = wait_current(agents, pg, 2, issued_after)
        time.sleep(15)
        marks["empty end"] = time.time()

        # Phase 5: kill -9 of 10% of each kind, restarted at once.
        sampler.phase = "kill"
        killed = [a for kind in KINDS for a in [x for x in agents if x.kind == kind][::10]]
        marks["kill"] = time.time()
        since = time.monotonic()
        for agent in killed:
            agent.kill()
            for name in os.listdir(agent.out):
                os.remove(os.path.join(agent.out, name))
            agent.start()
        recovered_kill = wait_current(killed, pg, 2, since=since)
        time.sleep(15)
        marks["end"] = time.time()
        sampler.stopped.set()
        sampler.join()
        dead = [a.dir for a in agents if a.proc.poll() is not None]
        if dead:
            raise SystemExit(f"{len(dead)} agents exited early, e.g. {dead[0]}/agent.log")
        final_leases = {kind: bao.live_leases(kind) for kind in KINDS}
        measured = True
    finally:
        if sampler:
            sampler.stopped.set()
        for agent in agents:
            agent.stop()
        for agent in agents:
            if agent.proc:
                try:
                    agent.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    agent.kill()
        if bao:
            bao.stop()
        if pg:
            pg.stop()
        if args.keep:
            print(f"kept {workdir} and {agentroot}", file=sys.stderr)
        else:
            shutil.rmtree(agentroot, ignore_errors=True)
            if not measured:
                shutil.rmtree(workdir, ignore_errors=True)

    try:
        windows = {
            "start": (t0, marks["started"]),
            "steady": (marks["started"], marks["steady end"]),
            "restart": (marks["restart"], marks["restart end"]),
            "empty": (marks["empty"], marks["empty end"]),
            "kill": (marks["kill"], marks["end"]),
        }
        requests, logins, login_times = audit_summary(audit_log, windows)
        minutes = (marks["steady end"] - marks["started"]) / 60
        steady = [s for s in sampler.samples if s["phase"] == "steady"]
        report(args, conditions, counts, start_times, marks, windows, requests, logins, login_times,
               minutes, steady, sampler.samples, recovered_restart, recovered_empty, recovered_kill,
               killed, final_leases, cpu_bao, t0, new_credentials)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def report(args, conditions, counts, start_times, marks, windows, requests, logins, login_times,
           minutes, steady, samples, recovered_restart, recovered_empty, recovered_kill, killed,
           final_leases, cpu_bao, t0, new_credentials):
    print(f"Fleet: {counts['keyhole']} keyhole-agent sidecars and {counts['bao']} bao agents "
          f"against one OpenBao (raft) and PostgreSQL 15. {conditions}.")
    print(f"Each agent: jwt login as its own subject, 2 KV v2 templates and 1 database credential "
          f"(TTL {DB_TTL}, max TTL {DB_MAX_TTL}); steady state {args.steady} s.\n")
    rows = []
    for kind in KINDS:
        n = counts[kind] or 1
        start_window = windows["start"]
        kind_start = marks[f"start {kind}"]
        kind_end = marks["start bao"] if kind == "keyhole" else start_window[1]
        per_s = [t for t in login_times[kind] if kind_start <= t < kind_end]
        span = (max(per_s) - min(per_s)) if len(per_s) > 1 else 0
        rss = [s[f"rss_{kind}"] for s in steady] or [0]
        leases = [s[f"leases_{kind}"] for s in samples if f"leases_{kind}" in s]
        steady_leases = [s[f"leases_{kind}"] for s in steady if f"leases_{kind}" in s]
        rows.append([
            LABELS[kind], counts[kind], fmt_s(start_times[kind]),
            f"{len(per_s) / span:.0f}" if span else "–",
            max_per_second(per_s, kind_start, kind_end),
            f"{requests['steady'][kind] / n / minutes:.2f}",
            f"{min(steady_leases, default=0)}–{max(steady_leases, default=0)}",
            f"{sum(1 for x in leases if x > counts[kind])} of {len(leases)}",
            f"{max(rss) / 1024:.2f} GiB",
            f"{max(rss) / n:.1f}",
        ])
    print(benchlib.table(
        ["agent", "agents", "phase 1: every file current", "logins/s in phase 1",
         "most logins in one second", "requests per agent per minute (steady)",
         "live leases (steady samples)", "samples with more leases than agents (all phases)",
         "total RSS (steady max)", "RSS per agent (MiB)"],
        rows, "lrrrrrrrrr"))
    print()
    rows = []
    for name, label, recovered, start in (
            ("restart", "3. restart with data", recovered_restart, marks["restarted"]),
            ("empty", "4. empty server, re-seeded", recovered_empty, marks["seeded"]),
            ("kill", "5. kill -9 of 10%", recovered_kill, marks["kill"])):
        for kind in KINDS:
            n = counts[kind] if name != "kill" else len([a for a in killed if a.kind == kind])
            peak = max_per_second(login_times[kind], *windows[name])
            rows.append([label, LABELS[kind], n, fmt_s(recovered[kind]), logins[name][kind],
                         f"{peak} ({peak * 100 / (n or 1):.0f} per 100)"])
    print(benchlib.table(["phase", "agent", "agents affected", "every file current after",
                          "logins", "most logins in one second"], rows, "llrrrr"))
    print(f"\nPhase 3 (OpenBao down {args.downtime} s): database files holding new credentials "
          f"afterwards: keyhole-agent {new_credentials['keyhole']} of {counts['keyhole']}, "
          f"bao agent {new_credentials['bao']} of {counts['bao']}.\n")
    rows = []
    for phase in ("start", "steady", "restart", "empty", "kill"):
        row = [phase]
        for kind in KINDS:
            leases = [s[f"leases_{kind}"] for s in samples if s["phase"] == phase and f"leases_{kind}" in s]
            row.append(f"{min(leases)}–{max(leases)} ({len(leases)})" if leases else "–")
        rows.append(row)
    print(benchlib.table(["phase", "keyhole-agent live leases min–max (samples)",
                          "bao agent live leases min–max (samples)"], rows, "lrr"))
    bao_rss = [s["rss_bao_server"] for s in samples]
    steady_s = marks["steady end"] - marks["started"]
    steady_rss = [s["rss_bao_server"] for s in steady] or [0]
    print(f"\nOpenBao: CPU {cpu_bao['started']:.1f} s until every agent had started (setup "
          f"included), {(cpu_bao['steady end'] - cpu_bao['started']) / steady_s * 100:.1f}% of one "
          f"core in steady state; RSS {max(steady_rss):.0f} MiB at most in steady state, "
          f"{max(bao_rss):.0f} MiB over the run.")
    print(f"Live leases at the end: keyhole {final_leases['keyhole']} (agents {counts['keyhole']}), "
          f"bao {final_leases['bao']} (agents {counts['bao']}). Steady state lasted {steady_s:.0f} s.")
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    boundaries = [("2", marks["started"]), ("3", marks["restart"]), ("4", marks["empty"]),
                  ("5", marks["kill"])]
    svg(login_times, t0, marks["end"], boundaries, args.svg,
        f"Logins per second, {counts['keyhole']} keyhole + {counts['bao']} bao agents, "
        f"phases 1-5 ({stamp})")
    print(f"Logins plot: {os.path.relpath(args.svg, benchlib.ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
