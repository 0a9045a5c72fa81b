"""Lints and renders the keyhole chart with real Helm (helm-python-sdk), offline.

Called by tests/tests/chart.rs with one JSON request on stdin:

    {"chart": "<dir>", "release": "keyhole", "namespace": "keyhole",
     "sets": {"<name>": {<values>}, ...},
     "rejected": {"<name>": {<values>}, ...},
     "examples": {"<name>": {<values>}, ...}}

and prints one JSON answer on stdout:

    {"helm": "<Helm SDK version>", "chart": {<Chart.yaml>},
     "lint": {"<name>": {"messages": [...], "errors": [...]}},
     "renders": {"<name>": {"first": "<manifests>", "second": "<manifests>",
                            "notes": "<NOTES.txt>",
                            "documents": [{"template": "<path>", "object": {...}}]}},
     "rejected": {"<name>": "<Helm's error message>" | null},
     "examples": {"<name>": "<Helm's error message>" | null}}

Every set is linted (with its values) and rendered twice, so the caller can compare the
two renders byte for byte. A set in "rejected" is expected to fail, by the values schema
or by a template's `required` or `fail`; its answer is Helm's message, or null when Helm
rendered it. A set in "examples" is rendered once, with the same answer.
"""

import json
import sys

import helm_python as helm
import yaml


def manifests_text(rendered):
    """The rendered templates as one stream, in template order, as `helm template` prints."""
    parts = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        text = rendered[template].strip()
        if text:
            parts.append(f"---\n# Source: {template}\n{text}\n")
    return "".join(parts)


def documents(rendered):
    docs = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        for obj in yaml.safe_load_all(rendered[template]):
            if obj is not None:
                docs.append({"template": template, "object": obj})
    return docs


def render_error(chart, values, options):
    """Helm's message when the chart does not render with `values`, else None."""
    try:
        chart.render(values, **options)
        return None
    except helm.HelmError as err:
        return str(err)


def main():
    request = json.load(sys.stdin)
    chart_dir = request["chart"]
    options = {"name": request["release"], "namespace": request["namespace"], "is_install": True}
    answer = {"helm": helm.helm_sdk_version(), "lint": {}, "renders": {}}
    with helm.Chart.load(chart_dir) as chart:
        answer["chart"] = chart.metadata
        for name, values in request["sets"].items():
            answer["lint"][name] = helm.lint(
                chart_dir, values, strict=True, namespace=request["namespace"]
            )
            first = chart.render(values, **options)
            second = chart.render(values, **options)
            notes = next((text for path, text in first.items() if path.endswith("NOTES.txt")), "")
            answer["renders"][name] = {
                "first": manifests_text(first),
                "second": manifests_text(second),
                "notes": notes,
                "documents": documents(first),
            }
        for kind in ("rejected", "examples"):
            answer[kind] = {
                name: render_error(chart, values, options)
                for name, values in request[kind].items()
            }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
