"""Shared pieces of the agent benchmarks: a local OpenBao dev server set up
for JWT login, seeded KV v2 secrets, and one Vault Agent config that both
`bao agent` and `keyhole-agent` run."""

import base64
import json
import os
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair():
    """A free port whose successor is free too: a dev server's cluster
    listener takes the port after its API port."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


class Bao:
    """An OpenBao dev server on a free loopback port, optionally with a file
    audit device (OpenBao only accepts audit devices from its config file)."""

    def __init__(self, workdir, audit_log=None):
        self.port = free_port_pair()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.token = "bench-root"
        argv = ["bao", "server", "-dev", f"-dev-root-token-id={self.token}",
                f"-dev-listen-address=127.0.0.1:{self.port}"]
        if audit_log:
            config = os.path.join(workdir, "audit.hcl")
            with open(config, "w") as f:
                f.write(f'audit "file" "file" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n')
            argv.append(f"-config={config}")
        log = open(os.path.join(workdir, "bao-server.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
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

    def put_secret(self, i, password):
        self.request("POST", f"secret/data/app-{i}",
                     {"data": {"username": f"user-{i}", "password": password}})

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


def setup(bao, workdir, secrets):
    """JWT auth with a fresh RSA key, role `bench`, and `secrets` KV v2
    secrets at secret/app-<i>. Returns the path of a minted JWT."""
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
    for i in range(secrets):
        bao.put_secret(i, f"pass-{i}-{'x' * 24}")
    jwt = os.path.join(workdir, "jwt")
    with open(jwt, "w") as f:
        f.write(mint_jwt(key, "vault"))
    return jwt


def write_config(path, bao, jwt, n, out, init_mode, static_interval="5m"):
    """One Vault Agent config: JWT login and `n` templates rendering into
    `out`, in init mode or as a sidecar."""
    lines = [
        f'vault {{\n  address = "{bao.addr}"\n}}',
        f"exit_after_auth = {'true' if init_mode else 'false'}",
        f'template_config {{\n  static_secret_render_interval = "{static_interval}"\n}}',
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
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def keyhole_binary(path=None):
    """The release keyhole-agent, built if `path` is not given."""
    if path:
        return path
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "keyhole-agent",
                    "--bin", "keyhole-agent"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "keyhole-agent")


def bao_version():
    return subprocess.run(["bao", "version"], capture_output=True, text=True).stdout.strip()
