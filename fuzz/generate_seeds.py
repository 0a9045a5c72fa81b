#!/usr/bin/env python3
"""Writes the generated seeds: reviews and templates at and past the injector's limits.

The fuzzer's mutations grow an input a few bytes at a time, so it does not reach a pod
with thousands of secrets or a template nested thousands of levels deep from the small
hand-written seeds. These seeds start it there. Run through `scripts/fuzz seeds`; the
output is deterministic, so the committed files change only when this script does.

  fuzz/corpus/admission_review/seed-gen-*.json   AdmissionReview bodies
  fuzz/corpus/template/seed-gen-*                template target inputs with a nesting
                                                 header (see fuzz_targets/template.rs)

The limits are those of injector/src/limits.rs and keyhole_agent::template::MAX_NESTING.
"""

import json
import pathlib
import struct
import zlib

MAX_ANNOTATION_BYTES = 256 * 1024
MAX_SECRETS = 128
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_SECRET_VOLUMES = 16
MAX_CONTAINERS = 100
MAX_VOLUMES = 1024
MAX_NESTING = 100

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
VAULT = "vault.hashicorp.com/"


def review(name, annotations, containers=1, init_containers=0, volumes=0):
    """A CREATE review of a pod in namespace `apps` with the given annotations."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "apps",
            "annotations": {
                VAULT + "agent-inject": "true",
                VAULT + "role": "app",
                **annotations,
            },
        },
        "spec": {
            "containers": [
                {"name": "app" if i == 0 else f"c{i}", "image": "nginx:1.27"}
                for i in range(containers)
            ],
        },
    }
    if init_containers:
        pod["spec"]["initContainers"] = [
            {"name": f"init{i}", "image": "busybox:1.36"} for i in range(init_containers)
        ]
    if volumes:
        pod["spec"]["volumes"] = [{"name": f"v{i}", "emptyDir": {}} for i in range(volumes)]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"00000000-0000-4000-8000-0000{zlib.crc32(name.encode()):08x}",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "apps",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:apps:deployer"},
            "object": pod,
        },
    }


def secrets(count, **per_secret):
    """`count` secrets s0, s1, … with distinct paths, and per-secret annotations
    (`prefix=function of i`)."""
    annotations = {}
    for i in range(count):
        annotations[f"{VAULT}agent-inject-secret-s{i}"] = f"secret/data/s{i}"
        for prefix, value in per_secret.items():
            annotations[f"{VAULT}{prefix.replace('_', '-')}-s{i}"] = value(i)
    return annotations


def padded(total):
    """One secret and a padding annotation: `total` bytes of annotations, keys and values."""
    annotations = {VAULT + "agent-inject-secret-db": "secret/data/db"}
    others = review("", annotations)["request"]["object"]["metadata"]["annotations"]
    used = sum(len(k) + len(v) for k, v in others.items()) + len("example.com/padding")
    return {**annotations, "example.com/padding": "x" * (total - used)}


def fill(text, size):
    """`text` repeated, padded with `x` to `size` bytes."""
    times = size // len(text)
    return text * times + "x" * (size - times * len(text))


def template(text):
    """One secret `db` rendered with the inline template `text`."""
    return {
        VAULT + "agent-inject-secret-db": "secret/data/db",
        VAULT + "agent-inject-template-db": text,
    }


def nested(construct, depth, body):
    """`body` in `depth` levels of a construct, as keyhole_fuzz::Nesting writes it."""
    if construct == "parens":
        return "{{" + "(" * depth + body + ")" * depth + "}}"
    if construct == "else-if":
        return (
            "{{ if false }}"
            + "{{ else if false }}" * (depth - 1)
            + "{{ else }}"
            + body
            + "{{ end }}"
        )
    if construct == "recursion":
        return (
            '{{ define "r" }}'
            + "{{ if true }}" * (depth - 1)
            + body
            + '{{ template "r" . }}'
            + "{{ end }}" * depth
            + '{{ template "r" . }}'
        )
    opening = {"if": "{{ if true }}", "with": "{{ with 1 }}", "range": "{{ range 1 }}"}
    return opening[construct] * depth + body + "{{ end }}" * depth


DB_USER = '{{ with secret "secret/data/db" }}{{ .Data.data.user }}{{ end }}'

REVIEWS = {
    # Secrets: at the limit, one past it, and the 20,000-secret shape that made the
    # duplicate check quadratic (as many as fit under the annotation limit).
    "secrets-at-limit": review("s128", secrets(MAX_SECRETS)),
    "secrets-over-limit": review("s129", secrets(MAX_SECRETS + 1)),
    "secrets-3000": review("s3000", secrets(3_000)),
    # Annotations one byte past their limit.
    "annotations-over-limit": review("padded", padded(MAX_ANNOTATION_BYTES + 1)),
    # Secret volumes: at the limit (15 custom paths and the default) and past it.
    "volumes-at-limit": review(
        "v16",
        secrets(MAX_SECRET_VOLUMES - 1, secret_volume_path=lambda i: f"/secrets/{i}"),
    ),
    "volumes-over-limit": review(
        "v17",
        secrets(MAX_SECRET_VOLUMES, secret_volume_path=lambda i: f"/secrets/{i}"),
    ),
    # Containers: at the limit, past it, and ten times past it.
    "containers-at-limit": review("c100", secrets(1), containers=90, init_containers=10),
    "containers-over-limit": review("c101", secrets(1), containers=MAX_CONTAINERS + 1),
    "containers-1000": review("c1000", secrets(1), containers=1_000),
    # Volumes of the pod: at the limit and past it.
    "pod-volumes-at-limit": review("pv1024", secrets(1), volumes=MAX_VOLUMES),
    "pod-volumes-over-limit": review("pv1025", secrets(1), volumes=MAX_VOLUMES + 1),
    # The widest admitted patch: every container mounts every secret volume.
    "containers-times-volumes": review(
        "wide",
        secrets(MAX_SECRET_VOLUMES - 1, secret_volume_path=lambda i: f"/secrets/{i}"),
        containers=MAX_CONTAINERS - 1,
    ),
    # Templates: at the size limit, past it, and deep.
    "template-at-limit": review(
        "t64k", template(fill(DB_USER, MAX_TEMPLATE_BYTES))
    ),
    "template-over-limit": review("t64k1", template("x" * (MAX_TEMPLATE_BYTES + 1))),
    "template-parens-2800": review("p2800", template(nested("parens", 2_800, "1"))),
    "template-parens-at-limit": review("p100", template(nested("parens", MAX_NESTING, "1"))),
    "template-if-2800": review("if2800", template(nested("if", 2_800, DB_USER))),
    "template-else-if-2800": review("elif2800", template(nested("else-if", 2_800, DB_USER))),
    # As deep as parses: DB_USER's `with` is one level, the recursive call another.
    "template-range-at-limit": review(
        "r100", template(nested("range", MAX_NESTING - 1, DB_USER))
    ),
    "template-recursion": review(
        "rec", template(nested("recursion", MAX_NESTING - 2, DB_USER))
    ),
    # Quotes double at each of the two levels of JSON a template goes through, and the
    # classic layout writes the agent's config twice: a patch past 1 MiB.
    "patch-over-limit": review(
        "quotes",
        {
            "keyhole.dev/native-sidecar": "false",
            **{
                f"{VAULT}agent-inject-template-q{i}": '"' * (48 * 1024)
                for i in range(3)
            },
        },
    ),
}

# Template target inputs: a selector byte (0x40: a header follows; % 3 picks the
# delimiters), then the header: construct, depth (u16 little endian), repeat; then the body.
CONSTRUCTS = ["parens", "if", "with", "range", "block", "else-if", "recursion", "mixed"]
DELIMITERS = ["{{ }}", "[[ ]]", "<% %>"]


def shaped(construct, depth, repeat, body, delimiters="{{ }}"):
    selector = next(b for b in range(0x40, 0x80) if b % 3 == DELIMITERS.index(delimiters))
    header = bytes([CONSTRUCTS.index(construct)]) + struct.pack("<H", depth) + bytes([repeat])
    return bytes([selector]) + header + body.encode()


def deepest(construct):
    """The deepest nesting of `construct` around DB_USER that parses."""
    return MAX_NESTING - 1 - (construct == "recursion")


TEMPLATES = {
    **{
        f"{construct}-2800": shaped(construct, 2_800, 0, "1" if construct == "parens" else "x")
        for construct in CONSTRUCTS
    },
    **{
        f"{construct}-at-limit": shaped(construct, deepest(construct), 0, DB_USER)
        for construct in CONSTRUCTS
        if construct != "parens"
    },
    "parens-at-limit": shaped("parens", MAX_NESTING, 0, '"a" | printf "%s"'),
    "fill-limit": shaped("if", 3, 255, DB_USER + "\n"),
    "fill-limit-brackets": shaped("range", 2, 255, "[[ .Data.data.list ]]\n", "[[ ]]"),
}


def main():
    total = 0
    for name, body in REVIEWS.items():
        path = CORPUS / "admission_review" / f"seed-gen-{name}.json"
        data = json.dumps(body, separators=(",", ":")).encode()
        path.write_bytes(data)
        total += len(data)
    for name, data in TEMPLATES.items():
        path = CORPUS / "template" / f"seed-gen-{name}"
        path.write_bytes(data)
        total += len(data)
    print(f"{len(REVIEWS) + len(TEMPLATES)} seeds, {total} bytes")


if __name__ == "__main__":
    main()
