"""Shared pieces of the agent benchmarks: a local OpenBao dev server set up
for JWT login, seeded KV v2 secrets, one Vault Agent config that both
`bao agent` and `keyhole-agent` run, and Markdown output."""

import base64
import concurrent.futures
import http.client
import json
import os
import socket
import statistics
import subprocess
import threading
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
        self._local = threading.local()
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

    def _post(self, path, body):
        """POST over this thread's kept-alive connection (a new connection
        per write costs more than the write on a dev server)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", f"/v1/{path}", body=json.dumps(body),
                     headers={"X-Vault-Token": self.token, "Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"POST {path}: HTTP {resp.status}: {text[:200]!r}")

    def put_secret(self, i, password):
        self._post(f"secret/data/app-{i}", {"data": {"username": f"user-{i}", "password": password}})

    def put_secrets(self, passwords, workers=8):
        """Writes secret/app-<i> for every (i, password), `workers` at a time."""
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(self.put_secret, i, p) for i, p in passwords]:
                future.result()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(key_path, audience, subject):
    """An RS256 JWT shaped like a projected service-account token."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": subject, "aud": [audience], "iat": now, "nbf": now, "exp": now + 3600,
    }).encode())
    signing_input = f"{header}.{claims}".encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path],
                         input=signing_input, capture_output=True, check=True).stdout
    return f"{header}.{claims}.{b64url(sig)}"


def enable_jwt_auth(bao, workdir, mount="jwt"):
    """The `jwt` auth method at `mount`, validating with a fresh RSA key.
    Returns the private key's path."""
    key = os.path.join(workdir, f"{mount}.key")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout"], check=True,
                         capture_output=True).stdout.decode()
    bao.request("POST", f"sys/auth/{mount}", {"type": "jwt"})
    bao.request("POST", f"auth/{mount}/config", {"jwt_validation_pubkeys": [pub]})
    return key


def add_jwt_role(bao, key, workdir, role, subject, policy, mount="jwt"):
    """Role `role` bound to `subject`; returns the path of a JWT for it."""
    bao.request("POST", f"auth/{mount}/role/{role}", {
        "role_type": "jwt", "bound_audiences": ["vault"], "bound_subject": subject,
        "user_claim": "sub", "token_policies": [policy], "token_ttl": "1h"})
    jwt = os.path.join(workdir, f"{role}.jwt")
    with open(jwt, "w") as f:
        f.write(mint_jwt(key, "vault", subject))
    return jwt


def setup(bao, workdir, secrets, roles=("bench",)):
    """JWT auth, one role per name in `roles` (each with its own subject, so
    the audit log tells their requests apart), and `secrets` KV v2 secrets at
    secret/app-<i>. Returns {role: path of a minted JWT} and the seconds
    the secrets took to write."""
    key = enable_jwt_auth(bao, workdir)
    bao.request("PUT", "sys/policies/acl/bench",
                {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
    jwts = {role: add_jwt_role(bao, key, workdir, role, f"system:serviceaccount:bench:{role}", "bench")
            for role in roles}
    start = time.perf_counter()
    bao.put_secrets((i, f"pass-{i}-{'x' * 24}") for i in range(secrets))
    return jwts, time.perf_counter() - start


def write_config(path, bao, jwt, n, out, init_mode, static_interval="5m", role="bench"):
    """One Vault Agent config: JWT login as `role` and `n` templates rendering
    into `out`, in init mode or as a sidecar."""
    lines = [
        f'vault {{\n  address = "{bao.addr}"\n}}',
        f"exit_after_auth = {'true' if init_mode else 'false'}",
        f'template_config {{\n  static_secret_render_interval = "{static_interval}"\n}}',
        "auto_auth {",
        '  method "jwt" {',
        f'    config = {{\n      role = "{role}"\n      path = "{jwt}"\n'
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


def release_binary(package):
    """The release build of the workspace binary `package`, built first."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", package, "--bin", package],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", package)


def release_example(package, example):
    """The release build of `package`'s example `example`, built first."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", package, "--example", example],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", example)


def keyhole_binary(path=None):
    """The release keyhole-agent, built if `path` is not given."""
    return path or release_binary("keyhole-agent")


def bao_version():
    """`bao version` without the commit, e.g. "OpenBao v2.7.2"."""
    out = subprocess.run(["bao", "version"], capture_output=True, text=True).stdout.strip()
    return out.split(" (")[0]


def conditions():
    """Date, cores and load average, to print above each table: timings
    depend on what else the machine runs."""
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
            f"load average before the run {load} (1/5/15 min); {bao_version()}")


def median(values):
    return statistics.median(values)


def rss_mib(pid):
    """A process's resident memory (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def table(header, rows, align):
    """A Markdown table; `align` is one of 'l' or 'r' per column."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def certificates(workdir, host):
    """A CA and a serving certificate for `host` and 127.0.0.1, ECDSA P-256 as
    the injector's auto-TLS issues them."""
    def run(*argv):
        subprocess.run(argv, cwd=workdir, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=keyhole bench CA", "-days", "2")
    run("openssl", "req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", f"/CN={host}")
    with open(os.path.join(workdir, "san.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{host},IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "2", "-extfile", "san.ext")
    return [os.path.join(workdir, name) for name in ("ca.crt", "tls.crt", "tls.key")]


class Server:
    """A webhook server process answering `/mutate` over HTTPS on `port`."""

    def __init__(self, name, argv, port, log, env=None):
        self.name = name
        self.url = f"https://127.0.0.1:{port}/mutate"
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.status_path = f"/proc/{self.proc.pid}/status"
        self.port = port

    def wait_listening(self):
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"{self.name} exited with {self.proc.returncode}")
                time.sleep(0.05)
        raise SystemExit(f"{self.name} did not listen on {self.port}")

    def status_kib(self, field):
        with open(self.status_path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise SystemExit(f"no {field} in {self.status_path}")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
