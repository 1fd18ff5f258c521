"""Every recorded exchange in cassettes/ validates against the official documents, and carries no secret.

Cassettes are scrubbed of Authorization (tests/conftest.py), so requests are checked without it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.contract import ContractRecorder

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
FILES = sorted(CASSETTES.glob("*/*.yaml"))


@functools.cache
def interactions(path: Path) -> list[dict[str, Any]]:
    """A cassette's exchanges, read once per process (both tests read each) with libyaml, as vcrpy reads it."""
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    found: list[dict[str, Any]] = loaded.get("interactions", []) if isinstance(loaded, dict) else []
    return found


def as_bytes(value: Any) -> bytes:
    if isinstance(value, dict):  # vcrpy stores response bodies as {"string": ...}
        value = value.get("string", b"")
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def single_headers(headers: dict[str, list[str]] | None) -> dict[str, str]:
    # str(): vcrpy writes a trace id like 000000010000000000000008 unquoted; YAML 1.2 readers take it for an int
    return {name: ", ".join(str(v) for v in values) for name, values in (headers or {}).items()}


@pytest.mark.skipif(not FILES, reason="no cassettes recorded yet")
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_recorded_exchanges_honour_the_contract(path: Path) -> None:
    recorder = ContractRecorder(require_auth=False)
    for exchange in interactions(path):
        request, response = exchange["request"], exchange["response"]
        recorder.validate_response(
            request["method"], request["uri"], int(response["status"]["code"]),
            single_headers(response.get("headers")), as_bytes(response.get("body")),
            request_headers=single_headers(request.get("headers")), request_body=as_bytes(request.get("body")),
        )
    recorder.check()


@pytest.mark.skipif(not FILES, reason="no cassettes recorded yet")
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_recorded_exchanges_carry_no_credentials(path: Path) -> None:
    for exchange in interactions(path):
        for part in ("request", "response"):
            names = {name.lower() for name in (exchange[part].get("headers") or {})}
            assert not names & {"authorization", "cookie", "set-cookie"}, f"{path.name}: {part} keeps {names}"
