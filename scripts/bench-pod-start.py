#!/usr/bin/env python3
"""Pod start to secrets ready: native sidecar against classic init container.

Runs `keyhole-injector mutate` on examples/deployment.yaml twice, with the
annotation `keyhole.dev/native-sidecar` set to "true" and to "false", and
takes the agent container each layout starts first: the native sidecar
`vault-agent` (an init container with restartPolicy Always and a startupProbe
running `keyhole-agent probe`) and the classic init container
`vault-agent-init` (runs once, exits). Each container's volume mounts are
remapped to directories of a temporary pod directory, as the kubelet would
mount them, and the agent runs with the injected `KEYHOLE_AGENT_CONFIG`
against a local OpenBao set up like the example's Vault: KV v2 secret
`secret/orders/db`, PKI role `pki/issue/orders` (an RSA certificate issued on
every start) and role `orders` at `auth/kubernetes`.

No kube-apiserver runs here, so `auth/kubernetes` is OpenBao's `jwt` method,
which takes the same login request ({role, jwt} to auth/kubernetes/login) and
checks the minted service-account token's signature itself: the TokenReview
round trip a cluster adds is not counted, for either layout.

Measured from just before the agent process is started to the readiness
signal:
- native sidecar: the ready file `keyhole-agent probe` checks appears
  (polled every 2 ms); `keyhole-agent probe` is then run once and must pass,
  and its own run time is reported;
- classic init: the process exits 0.
Both layouts must leave the three files of the example. Layouts alternate;
prints a Markdown table of medians.

Usage: scripts/bench-pod-start.py [--runs 15] [--quick]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import benchlib
import yaml

DEPLOYMENT = os.path.join(benchlib.ROOT, "examples/deployment.yaml")
LAYOUTS = {"native sidecar": ("true", "vault-agent"), "classic init": ("false", "vault-agent-init")}
SUBJECT = "system:serviceaccount:demo:orders"
FILES = ("config.env", "db", "tls.pem")


def configure_example(bao, workdir):
    """OpenBao set up as examples/ expects; returns the path of a minted
    service-account token."""
    key = benchlib.enable_jwt_auth(bao, workdir, mount="kubernetes")
    bao.request("PUT", "sys/policies/acl/orders", {"policy": (
        'path "secret/data/orders/*" { capabilities = ["read"] }\n'
        'path "pki/issue/orders" { capabilities = ["update"] }')})
    jwt = benchlib.add_jwt_role(bao, key, workdir, "orders", SUBJECT, "orders", mount="kubernetes")
    bao.request("POST", "secret/data/orders/db",
                {"data": {"username": "orders", "password": "initial-s3cret"}})
    bao.request("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
    bao.request("POST", "pki/root/generate/internal", {"common_name": "bench root CA", "ttl": "87600h"})
    bao.request("POST", "pki/roles/orders", {
        "allow_any_name": True, "enforce_hostnames": False, "max_ttl": "72h"})
    return jwt


def injected_container(injector, bao, workdir, native, name):
    """Container `name` of the example's pod template as the injector
    mutates it with keyhole.dev/native-sidecar set to `native`."""
    with open(DEPLOYMENT) as f:
        manifest = f.read()
    anchor = '        vault.hashicorp.com/agent-inject: "true"\n'
    if anchor not in manifest:
        raise SystemExit(f"{DEPLOYMENT} no longer has the line {anchor.strip()!r}")
    manifest = manifest.replace(anchor, anchor + f'        keyhole.dev/native-sidecar: "{native}"\n')
    path = os.path.join(workdir, f"deployment-{native}.yaml")
    with open(path, "w") as f:
        f.write(manifest)
    mutated = subprocess.run([injector, "mutate", "-f", path, "--vault-addr", bao.addr],
                             capture_output=True, text=True, check=True).stdout
    spec = yaml.safe_load(mutated)["spec"]["template"]["spec"]
    for container in spec.get("initContainers", []) + spec["containers"]:
        if container["name"] == name:
            return container
    raise SystemExit(f"the mutated pod has no container {name}")


def remapped_config(container, pod_dir, token):
    """The container's KEYHOLE_AGENT_CONFIG with every mount path pointing
    into `pod_dir`, the projected token written where it expects it, and the
    secrets directory."""
    config = next(e["value"] for e in container["env"] if e["name"] == "KEYHOLE_AGENT_CONFIG")
    volumes = {}
    # Longest mount paths first, so /vault/secrets/x is not cut by /vault.
    for mount in sorted(container["volumeMounts"], key=lambda m: -len(m["mountPath"])):
        directory = os.path.join(pod_dir, mount["name"])
        os.makedirs(directory, exist_ok=True)
        config = config.replace(mount["mountPath"], directory)
        volumes[mount["name"]] = directory
    parsed = json.loads(config)
    methods = parsed["auto_auth"]["method"]
    method = methods[0] if isinstance(methods, list) else methods
    with open(method["config"]["token_path"], "w") as f:
        f.write(token)
    return config, parsed["keyhole"]["ready_file"], volumes["vault-secrets"]


def run_native(agent, config, ready_file):
    env = dict(os.environ, KEYHOLE_AGENT_CONFIG=config)
    env.pop("VAULT_ADDR", None)
    start = time.perf_counter()
    proc = subprocess.Popen([agent], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not os.path.exists(ready_file):
            if proc.poll() is not None:
                raise SystemExit(f"the native sidecar exited {proc.returncode} before it was ready:\n"
                                 f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
            if time.perf_counter() - start > 60:
                raise SystemExit("the native sidecar was not ready within 60 s")
            time.sleep(0.002)
        ready = time.perf_counter() - start
        probe_start = time.perf_counter()
        probe = subprocess.run([agent, "probe"], env=dict(env, VAULT_LOG_LEVEL="error"))
        probe_time = time.perf_counter() - probe_start
        if probe.returncode != 0:
            raise SystemExit(f"keyhole-agent probe exited {probe.returncode} with the ready file present")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stderr.close()
    return ready, probe_time


def run_classic(agent, config):
    env = dict(os.environ, KEYHOLE_AGENT_CONFIG=config)
    env.pop("VAULT_ADDR", None)
    start = time.perf_counter()
    proc = subprocess.run([agent], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the init container exited {proc.returncode}:\n"
                         f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return wall


def check_files(secrets):
    for name in FILES:
        path = os.path.join(secrets, name)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise SystemExit(f"{path} was not rendered")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per layout")
    parser.add_argument("--quick", action="store_true", help="3 runs per layout: a smoke run")
    parser.add_argument("--keyhole", default=None, help="keyhole-agent binary (default: release build)")
    parser.add_argument("--injector", default=None, help="keyhole-injector binary (default: release build)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    agent = benchlib.keyhole_binary(args.keyhole)
    injector = args.injector or benchlib.release_binary("keyhole-injector")
    conditions = benchlib.conditions()

    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory(dir=tmpfs) as pods:
        bao = benchlib.Bao(workdir)
        try:
            with open(configure_example(bao, workdir)) as f:
                token = f.read()
            containers = {layout: injected_container(injector, bao, workdir, native, name)
                          for layout, (native, name) in LAYOUTS.items()}
            ready = {layout: [] for layout in LAYOUTS}
            probes = []
            for run in range(args.runs):
                for layout, container in containers.items():
                    pod_dir = os.path.join(pods, f"pod-{run}-{layout.split()[0]}")
                    config, ready_file, secrets = remapped_config(container, pod_dir, token)
                    if layout == "native sidecar":
                        wall, probe = run_native(agent, config, ready_file)
                        probes.append(probe)
                    else:
                        wall = run_classic(agent, config)
                    check_files(secrets)
                    ready[layout].append(wall)
                    shutil.rmtree(pod_dir)
        finally:
            bao.stop()

    print(f"Pod start to secrets ready, examples/deployment.yaml. {conditions}.")
    print(f"{args.runs} runs per layout, alternating; agent configs from `keyhole-injector mutate`; "
          "3 files (KV v2 with the default template, KV v2 with a custom template, a PKI "
          "certificate issued at start).\n")
    rows = []
    for layout, (_, name) in LAYOUTS.items():
        signal_text = ("ready file (startupProbe `keyhole-agent probe`)" if layout == "native sidecar"
                       else "process exits 0")
        times = ready[layout]
        rows.append([layout, f"`{name}`", signal_text, f"{benchlib.median(times) * 1000:.0f}",
                     f"{min(times) * 1000:.0f}", f"{max(times) * 1000:.0f}"])
    print(benchlib.table(["layout", "container", "readiness signal", "median (ms)", "min (ms)", "max (ms)"],
                         rows, "lllrrr"))
    native, classic = (benchlib.median(ready[layout]) for layout in LAYOUTS)
    print(f"\nnative / classic: {native / classic:.2f}×. One `keyhole-agent probe` run: "
          f"median {benchlib.median(probes) * 1000:.1f} ms.")


if __name__ == "__main__":
    sys.exit(main())
