#!/usr/bin/env python3
"""Write docs/parameters.md from the PARAMETERS spec of every node in setup.py's NODES.
The test suite fails when the file is out of date: run `tools/ros_env.sh python tools/gen_param_docs.py`."""
from __future__ import annotations

import ast
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "parameters.md")


def nodes() -> dict:
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "NODES":
            return ast.literal_eval(node.value)
    raise SystemExit("setup.py has no NODES table")


def render() -> str:
    out = ["# Node parameters", "",
           "Generated from each node's `PARAMETERS` by `tools/gen_param_docs.py`; do not edit by hand.",
           "Defaults for the demo are in `config/<node>.yaml`. `ros2 param describe <node> <name>`",
           "prints the same descriptions at run time. Read-only parameters are fixed at start-up. A value",
           "outside its range (inclusive), or a NaN / infinite float, stops the node at start-up with one",
           "`[FATAL]` line and is refused by `ros2 param set`.", ""]
    for exe, target in sorted(nodes().items()):
        module = importlib.import_module(target.split(":")[0])
        doc = (module.__doc__ or "").strip().split("\n\n")
        out += [f"## `{exe}`", "", " ".join(doc[0].split()), ""]
        out += ["| parameter | default | range | description |", "|---|---|---|---|"]
        for p in module.PARAMETERS:
            default = repr(p.default) if isinstance(p.default, str) else str(p.default).lower() \
                if isinstance(p.default, bool) else str(p.default)
            ro = " (read-only)" if p.read_only else ""
            rng = f"[{p.range[0]:g}, {p.range[1]:g}]" if p.range else ""
            out.append(f"| `{p.name}` | `{default}` | {rng} | {p.description}{ro} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if os.path.isfile(DOC) and open(DOC).read() == text else 1)
    with open(DOC, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(DOC, ROOT)}")
