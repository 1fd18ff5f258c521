"""Cut the Microsoft Graph slice (msgraph-v1.0-users-groups.slice.yaml) out of msgraph-sdk-powershell's
per-module OpenAPI documents. Run by hand, never by the tests: see README.md ("Microsoft Graph slice").

usage: python tests/specs/slice_graph.py Users.yml Groups.yml > tests/specs/msgraph-v1.0-users-groups.slice.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

# (source document, path) pairs kept, in this order; each path item is kept whole (all its methods).
KEPT_PATHS = (
    ("Users.yml", "/users"),
    ("Groups.yml", "/groups"),
    ("Groups.yml", "/groups/{group-id}/members"),
    ("Groups.yml", "/groups/{group-id}/transitiveMembers"),
)


def refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def component(doc: dict[str, Any], ref: str) -> Any:
    _, _, kind, name = ref.split("/", 3)  # '#/components/<kind>/<name>'
    return doc["components"][kind][name]


def main(users_file: str, groups_file: str) -> None:
    yaml = YAML(typ="safe")
    docs = {"Users.yml": yaml.load(Path(users_file).read_text(encoding="utf-8")),
            "Groups.yml": yaml.load(Path(groups_file).read_text(encoding="utf-8"))}
    base = docs["Groups.yml"]
    out: dict[str, Any] = {"openapi": base["openapi"], "info": base["info"], "servers": base["servers"],
                           "paths": {}, "components": {}}
    out["info"] = {**base["info"], "title": "Users and Groups (slice)"}
    origin: dict[str, str] = {}  # each component comes from the document whose path first needed it
    stack: list[tuple[str, str]] = []
    for source, path in KEPT_PATHS:
        item = docs[source]["paths"][path]
        out["paths"][path] = item
        found: set[str] = set()
        refs(item, found)
        stack += [(source, ref) for ref in sorted(found)]
    while stack:
        source, ref = stack.pop()
        if ref in origin:
            continue
        origin[ref] = source
        node = component(docs[source], ref)
        found = set()
        refs(node, found)
        stack += [(source, r) for r in sorted(found) if r not in origin]
    for ref in sorted(origin):
        _, _, kind, name = ref.split("/", 3)
        node = component(docs[origin[ref]], ref)
        other = "Users.yml" if origin[ref] == "Groups.yml" else "Groups.yml"
        twin = docs[other]["components"].get(kind, {}).get(name)
        if twin is not None and twin != node:  # the two modules must agree on every shared component
            sys.exit(f"{ref}: differs between Users.yml and Groups.yml")
        out["components"].setdefault(kind, {})[name] = node
    if "securitySchemes" in base["components"]:
        out["components"]["securitySchemes"] = base["components"]["securitySchemes"]
    if "security" in base:
        out["security"] = base["security"]
    dump = YAML(typ="safe")
    dump.default_flow_style = False
    dump.width = 4096
    dump.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
