"""Evaluates a webhook's matchConditions on objects with a real CEL evaluator (cel-python).

Called by tests/tests/chart.rs with one JSON request on stdin:

    {"conditions": [{"name": "<name>", "expression": "<CEL>"}, ...],
     "objects": {"<label>": {<Pod>}, ...}}

and prints one JSON answer on stdout: for each object, each condition's result, as
the API server sees it when a Pod is created (`object` the Pod, `oldObject` null):

    {"<label>": {"<condition name>": true | false | "error: <message>"}}

An expression that does not compile is an error of the whole run (exit status 1).
"""

import json
import sys

import celpy


def evaluate(program, activation):
    try:
        result = program.evaluate(activation)
    except celpy.CELEvalError as err:
        return f"error: {err.args[0] if err.args else err}"
    # cel-python returns some evaluation errors as values rather than raising them.
    if isinstance(result, celpy.CELEvalError):
        return f"error: {result.args[0] if result.args else result}"
    if not isinstance(result, celpy.celtypes.BoolType):
        return f"error: not a bool: {result!r}"
    return bool(result)


def main():
    request = json.load(sys.stdin)
    env = celpy.Environment()
    programs = [
        (condition["name"], env.program(env.compile(condition["expression"])))
        for condition in request["conditions"]
    ]
    answer = {}
    for label, obj in request["objects"].items():
        activation = {
            "object": celpy.json_to_cel(obj),
            "oldObject": None,
            "request": celpy.json_to_cel(
                {"operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "Pod"}}
            ),
        }
        answer[label] = {name: evaluate(program, activation) for name, program in programs}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
