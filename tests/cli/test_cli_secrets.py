"""No secret value ever reaches stdout, stderr, plan files, journals or the audit log.

Runs the real CLI (with --verbose, so every request is logged) against the simulator serving the
Confluence DC API on a loopback port, with a personal access token only the environment knows.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconcile.plan import Plan
from reconcile.sim.app import build_app
from reconcile.sim.server import running
from tests.support.cli import reconcile, reconcile_process
from tests.support.sim import example_site_with_token

TOKEN = "s3cr3t-token-value"
WRONG = "s3cr3t-wrong-token-value"

DESIRED = """\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth:
    token: ${{CONFLUENCE_TOKEN}}
scope:
  users: ["*@example.com"]
  groups: ["team-*"]
  protect: ["svc-*"]
policy:
  absent: ignore
users:
  alice@example.com:
    groups: [team-docs, team-platform]
  bob@example.com:
    groups: [team-docs]
  carol@example.com:
    groups: []
"""


@pytest.fixture(scope="session")  # not module: xdist interleaves modules, which restarts it
def sim_url() -> Iterator[str]:
    with example_site_with_token(TOKEN) as url:
        yield url


def test_secret_never_written_or_printed(sim_url: str, tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "site.yaml").write_text(DESIRED.format(url=sim_url))
    state = tmp_path / "state"
    base = ["--verbose", "--desired", str(desired), "--state-dir", str(state)]
    outputs: list[str] = []

    def run(*args: str, token: str = TOKEN) -> int:
        result = reconcile(*base, *args, env={"CONFLUENCE_TOKEN": token, "NO_COLOR": "1"})
        outputs.append(result.stdout + result.stderr)
        return result.exit_code

    plan_file = tmp_path / "plan.json"
    assert run("validate") == 0, outputs[-1]
    assert run("plan", "--out", str(plan_file), "--detailed-exitcode") == 3, outputs[-1]
    plan = Plan.loads(plan_file.read_text())
    assert [a.describe() for a in plan.actions] == [
        f"add alice@example.com ({plan.actions[0].subject.ref}) to team-platform",
        f"remove carol@example.com ({plan.actions[1].subject.ref}) from team-docs",
    ]
    assert run("plan", "--format", "markdown") == 0
    assert run("show", str(plan_file), "--format", "json") == 0
    assert run("apply", str(plan_file), "--approve", plan.digest) == 0, outputs[-1]
    assert run("plan", "--detailed-exitcode") == 0, outputs[-1]
    assert run("plan", token=WRONG) == 1, outputs[-1]  # a wrong token: one clear error

    assert any("GET " in text for text in outputs), "--verbose logged the requests"
    assert "credentials" in outputs[-1].lower() or "token" in outputs[-1].lower()
    written = [plan_file, *state.rglob("*")]
    assert any(p.name == "audit.jsonl" for p in written) and any(p.suffix == ".jsonl" for p in written)
    for secret in (TOKEN, WRONG):
        for number, text in enumerate(outputs):
            assert secret not in text, f"secret in the output of command #{number}"
        for path in written:
            if path.is_file():
                assert secret not in path.read_text(), f"secret in {path}"


# No credential reaches any output or file, on paths tests/cli/test_cli_secrets.py does not walk.
#
# The real CLI in a subprocess (`python -m reconcile.cli`), with `--verbose --log-format json`, against
# the simulator on a loopback port: the Atlassian Cloud organization API key and the site API token
# (used by `delete: remove-from-site`), Confluence DC basic auth and a `token_file`, `export` to YAML
# and CSV, and the failing paths (a wrong key, an unreachable server, a desired file with a YAML error
# next to its secret reference). stdout, stderr, plan files, journals, the audit log and the
# exported files are searched for every secret value, and for its Base64 form (basic auth).
ORG = "3f2a9c1e-7b4d-4e6f-9a8b-1c2d3e4f5a6b"  # the example world's organization

OWNER = "712020:0c0a0000-0000-4000-8000-000000000001"  # olga, org admin

CLOUD_KEY = "rvw-Cl0udKey-7a6b5c4d3e2f"

WRONG_KEY = "rvw-Wr0ngKey-0f9e8d7c6b5a"

SITE_TOKEN = "rvw-S1teToken-1122334455"

DC_PASSWORD = "rvw-DcPassw0rd-998877"

DC_TOKEN = "rvw-DcT0kenFile-665544"

SECRETS = (CLOUD_KEY, WRONG_KEY, SITE_TOKEN, DC_PASSWORD, DC_TOKEN)

def _forms(secret: str) -> list[str]:
    """The value, and the Base64 of `user:value` as an Authorization header would carry it."""
    return [secret, *(base64.b64encode(f"{user}:{secret}".encode()).decode()
                      for user in ("admin", "olga@acme.example"))]


@pytest.fixture(scope="session")  # not module: xdist interleaves modules, which restarts it
def loaded_sim_url() -> Iterator[str]:
    app = build_app()
    ctx = app.state.ctx
    assert ctx.cloud is not None
    ctx.cloud.api_keys[CLOUD_KEY] = OWNER
    ctx.cloud.site_credentials["olga@acme.example"] = SITE_TOKEN
    dc = ctx.dc
    admin = dc.users[dc.by_username["admin"]]
    admin.password = DC_PASSWORD
    dc.tokens[DC_TOKEN] = admin.key
    with running(app) as url:
        yield url


@dataclass
class Run:
    tmp: Path
    env: dict[str, str]
    texts: list[str] = field(default_factory=list)

    def __call__(self, desired: Path, *args: str,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = reconcile_process("--verbose", "--log-format", "json", "--desired", str(desired),
                                 "--state-dir", str(self.tmp / "state"), *args,
                                 env={**self.env, **(env or {}), "NO_COLOR": "1"})
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        self.texts.append(f"$ {' '.join(args)}\n{done.stdout}\n{done.stderr}")
        return done

    def assert_no_secret(self) -> None:
        files = [p for p in self.tmp.rglob("*") if p.is_file() and p.suffix != ".txt"]
        assert any(p.name == "audit.jsonl" for p in files) and any(p.parent.name == "journal" for p in files)
        for secret in SECRETS:
            for form in _forms(secret):
                for number, text in enumerate(self.texts):
                    assert form not in text, f"a secret in the output of command #{number}:\n{text[:2000]}"
                for path in files:
                    assert form not in path.read_text(errors="replace"), f"a secret in {path}"


def _write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "target.yaml").write_text(text)
    return directory


CLOUD = """\
version: 1
target:
  type: atlassian-cloud
  org_id: {org}
  auth:
    api_key: ${{ATLASSIAN_ADMIN_KEY}}
  url: {url}
  delete: remove-from-site
  site:
    url: {url}
    email: olga@acme.example
    token: ${{ATLASSIAN_SITE_TOKEN}}
scope:
  users: ["*@acme.example"]
  groups: [confluence-users, "team-*"]
policy:
  absent: delete
  limits: {{delete: 10}}
users:
  alice@acme.example: {{groups: [confluence-users, team-docs]}}
  carol@acme.example: {{groups: [confluence-users]}}
  erin@acme.example: {{groups: [confluence-users]}}
"""

DC = """\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth:
{auth}
scope:
  users: ["*"]
  groups: ["team-*"]
  protect: [admin, "svc-*"]
policy:
  absent: ignore
users:
  alice: {{groups: [team-docs, team-platform]}}
"""

@pytest.mark.slow  # a dozen reconcile processes
def test_cloud_api_key_and_site_token_never_leak(loaded_sim_url: str, tmp_path: Path) -> None:
    run = Run(tmp_path, {"ATLASSIAN_ADMIN_KEY": CLOUD_KEY, "ATLASSIAN_SITE_TOKEN": SITE_TOKEN})
    desired = _write(tmp_path / "cloud", CLOUD.format(org=ORG, url=loaded_sim_url))
    plan_file = tmp_path / "plan.json"
    assert run(desired, "validate").returncode == 0, run.texts[-1]
    planned = run(desired, "plan", "--out", str(plan_file), "--detailed-exitcode")
    assert planned.returncode == 3, run.texts[-1]
    plan = json.loads(plan_file.read_text())
    deletes = [a for a in plan["actions"] if a["kind"] == "delete"]
    assert deletes, "the plan removes someone from the site: the site token is used at apply"
    assert run(desired, "show", str(plan_file), "--format", "markdown").returncode == 0
    assert run(desired, "export", "--out", str(tmp_path / "export.yaml")).returncode == 0, run.texts[-1]
    assert run(desired, "export", "--format", "csv", "--out", str(tmp_path / "export.csv")).returncode == 0
    applied = run(desired, "apply", str(plan_file), "--approve", plan["digest"])
    assert applied.returncode == 0, run.texts[-1]
    assert '"logger": "reconcile.http"' in applied.stderr, "--verbose logged each request"
    assert "/rest/api/2/user" in applied.stderr, "the site REST delete ran with the site token"
    wrong = run(desired, "plan", env={"ATLASSIAN_ADMIN_KEY": WRONG_KEY})
    assert wrong.returncode == 1 and "401" in wrong.stderr
    run.assert_no_secret()


@pytest.mark.slow  # a dozen reconcile processes
def test_dc_basic_auth_and_token_file_never_leak(loaded_sim_url: str, tmp_path: Path) -> None:
    token_file = tmp_path / "secrets" / "pat.txt"
    token_file.parent.mkdir()
    token_file.write_text(DC_TOKEN + "\n")
    run = Run(tmp_path, {"CONFLUENCE_PASSWORD": DC_PASSWORD})
    basic = _write(tmp_path / "basic", DC.format(
        url=loaded_sim_url, auth="    username: admin\n    password: ${CONFLUENCE_PASSWORD}"))
    by_file = _write(tmp_path / "file", DC.format(url=loaded_sim_url, auth=f"    token_file: {token_file}"))
    for desired in (basic, by_file):
        plan_file = tmp_path / f"{desired.name}.json"
        assert run(desired, "plan", "--out", str(plan_file)).returncode == 0, run.texts[-1]
        assert run(desired, "export", "--out", str(tmp_path / f"{desired.name}.yaml")).returncode == 0
        digest = json.loads(plan_file.read_text())["digest"]
        assert run(desired, "apply", str(plan_file), "--approve", digest).returncode == 0, run.texts[-1]
    # failures: a server that is not there, and a YAML error right next to the secret reference
    gone = _write(tmp_path / "gone", DC.format(
        url="http://127.0.0.1:1", auth="    username: admin\n    password: ${CONFLUENCE_PASSWORD}"))
    assert run(gone, "plan").returncode == 1 and "could not connect" in run.texts[-1]
    broken = _write(tmp_path / "broken", DC.format(
        url=loaded_sim_url, auth="    username: admin\n    password: ${CONFLUENCE_PASSWORD}: [oops"))
    failed = run(broken, "plan")
    assert failed.returncode == 1 and "target.yaml:" in failed.stderr
    run.assert_no_secret()
