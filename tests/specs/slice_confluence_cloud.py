"""Cut the Confluence Cloud slices (confluence-cloud-v2.spaces.slice.json, confluence-cloud-v1.search.slice.json)
out of Atlassian's published v2 and v1 documents. Run by hand, never by the tests: see README.md
("Confluence Cloud slices").

usage: python tests/specs/slice_confluence_cloud.py confluence-v2.json confluence-v1.json tests/specs/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (output file, the GET operations kept): what the delete guard reads of a Confluence Cloud site.
SLICES = (
    ("confluence-cloud-v2.spaces.slice.json", ("/spaces", "/spaces/{id}/permissions")),
    ("confluence-cloud-v1.search.slice.json", ("/wiki/rest/api/search",)),
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


def cut(doc: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The GET operations of `paths` (path-level parameters kept), every component they reach, `info`,
    `servers`, the security schemes; nothing inside a kept node is changed."""
    out: dict[str, Any] = {"openapi": doc["openapi"], "info": doc["info"], "servers": doc.get("servers", []),
                           "paths": {}, "components": {}}
    found: set[str] = set()
    for path in paths:
        item = {k: v for k, v in doc["paths"][path].items() if k in ("get", "parameters")}
        out["paths"][path] = item
        refs(item, found)
    seen: set[str] = set()
    stack = sorted(found)
    while stack:
        ref = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)  # '#/components/<kind>/<name>'
        node = doc["components"][kind][name]
        out["components"].setdefault(kind, {})[name] = node
        more: set[str] = set()
        refs(node, more)
        stack += sorted(more - seen)
    out["components"]["securitySchemes"] = doc["components"]["securitySchemes"]
    return out


def main(v2_file: str, v1_file: str, folder: str) -> None:
    docs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in (v2_file, v1_file)]
    for doc, (name, paths) in zip(docs, SLICES, strict=True):
        text = json.dumps(cut(doc, paths), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        Path(folder, name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
