"""Bad desired directories: each reports exactly these `file:line:col: message` lines.

`schema` says whether the JSON Schema (file by file, as an editor sees it) also rejects the case;
test_config_schema.py holds the schema to that, so the flag cannot lie.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.config import HEAD, problems, write


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str]
    expected: list[str]
    schema: bool | None  # None: not YAML at all, so there is nothing to give the schema


def one(text: str) -> dict[str, str]:
    return {"main.yaml": text}


CASES = [
    Case("unknown key with hint", one(HEAD + "polcy:\n  absent: delete\n"), [
        "desired/main.yaml:10:1: unknown key 'polcy' at the top level; did you mean 'policy'?",
    ], True),
    Case("unknown target key", one(HEAD.replace("  auth:", "  admin_group: [x]\n  auth:")), [
        "desired/main.yaml:5:3: unknown key 'admin_group' in target; did you mean 'admin_groups'?",
    ], True),
    Case("unknown key without a close match", one(HEAD + "colour: red\n"), [
        "desired/main.yaml:10:1: unknown key 'colour' at the top level; allowed: version, target, sources, "
        "scope, policy, notify, users, groups, exemptions",
    ], True),
    Case("wrong type", one(HEAD.replace("  auth:", "  http: {timeout: fast, concurrency: 0}\n  auth:")), [
        "desired/main.yaml:5:19: target.http.timeout: expected a number, got a string",
        "desired/main.yaml:5:38: target.http.concurrency: must be at least 1, got 0",
    ], True),
    Case("list expected", one(HEAD.replace('["team-*"]', "team-*")), [
        "desired/main.yaml:8:11: scope.groups: expected a list, got a string",
    ], True),
    Case("unknown status", one(HEAD + "users:\n  bob: {status: disable}\n"), [
        "desired/main.yaml:11:17: users.bob.status: unknown value 'disable'; did you mean 'disabled'? "
        "(allowed: active, disabled)",
    ], True),
    Case("unknown policy value", one(HEAD + "policy:\n  absent: remove\n"), [
        "desired/main.yaml:11:11: policy.absent: unknown value 'remove'; allowed: disable, delete, ignore",
    ], True),
    Case("unknown target type", one(HEAD.replace("type: confluence-dc", "type: confluence")), [
        "desired/main.yaml:3:9: target.type: unknown value 'confluence'; did you mean 'confluence-dc'? "
        "(allowed: confluence-dc, atlassian-cloud, memory)",
    ], True),
    Case("bad glob", one(HEAD.replace('["team-*"]', '["team-*", "team-[ab"]')), [
        "desired/main.yaml:8:22: scope.groups[1]: bad glob 'team-[ab': a '[' is not closed by ']'",
    ], True),
    Case("invalid emails", one(HEAD + "users:\n  alice@: {}\ngroups:\n  team-a: {members: [x@y]}\n"), [
        "desired/main.yaml:11:3: users: invalid email or username 'alice@' (an email needs "
        "name@domain.tld; a username has no '@')",
        "desired/main.yaml:13:22: groups.team-a.members[0]: invalid email or username 'x@y' (an email "
        "needs name@domain.tld; a username has no '@')",
    ], True),
    Case("limits", one(HEAD + 'policy:\n  limits: {delete: "10 %", disable: "150%", deletes: 5}\n'), [
        "desired/main.yaml:11:20: policy.limits.delete: '10 %' is neither a count (25) nor a percentage "
        "up to 100% (\"10%\")",
        "desired/main.yaml:11:37: policy.limits.disable: '150%' is neither a count (25) nor a percentage "
        "up to 100% (\"10%\")",
        "desired/main.yaml:11:45: unknown key 'deletes' in policy.limits; did you mean 'delete'?",
    ], True),
    Case("group outside scope", one(HEAD + "users:\n  a@example.com: {groups: [ops]}\n"
                                    "  b@example.com: {groups: [ops, team-a]}\n"), [
        "desired/main.yaml:11:28: group 'ops' is outside scope.groups (and 1 more places); add it (or a "
        "glob matching it) to scope.groups, or remove it",
    ], False),
    Case("group outside default scope", one(HEAD.replace('  groups: ["team-*"]\n', "")
                                            + "groups:\n  Team-A: {members: [a@example.com]}\n"), [
        "desired/main.yaml:10:3: group 'team-a' is outside scope.groups; add it (or a glob matching it) "
        "to scope.groups, or remove it",
    ], False),
    Case("scope without users", one(HEAD.replace('  users: ["*"]\n', "")), [
        "desired/main.yaml:7:1: scope: missing required key 'users'; say which accounts this configuration "
        'manages, e.g. users: ["*@example.com"] (users: ["*"] manages every account on the target; there is '
        "no default)",
    ], True),
    Case("no scope at all", one(HEAD.replace('scope:\n  groups: ["team-*"]\n  users: ["*"]\n', "")), [
        "desired/main.yaml:2:1: no scope.users: add a scope: section and say which accounts this "
        'configuration manages, e.g. users: ["*@example.com"] (users: ["*"] manages every account on the '
        "target; there is no default)",
    ], False),
    Case("empty scope", one(HEAD.replace('scope:\n  groups: ["team-*"]\n  users: ["*"]\n', "scope:\n")), [
        "desired/main.yaml:7:1: no scope.users: add a scope: section and say which accounts this "
        'configuration manages, e.g. users: ["*@example.com"] (users: ["*"] manages every account on the '
        "target; there is no default)",
    ], False),
    Case("http to another host", one(HEAD.replace("https://confluence.example.com", "http://127.0.0.1.nip.io")), [
        "desired/main.yaml:4:8: target.url: http:// to a host that is not this machine sends the credentials "
        "in clear; use https://, or write `insecure: true` on the target to accept that",
    ], True),
    Case("http to another host, insecure: false", one(HEAD.replace(
            "https://confluence.example.com", "http://localhost.example.com:8090/\n  insecure: false")), [
        "desired/main.yaml:4:8: target.url: http:// to a host that is not this machine sends the credentials "
        "in clear; use https://, or write `insecure: true` on the target to accept that",
    ], True),
    Case("cloud site over http", one(
        "version: 1\ntarget:\n  type: atlassian-cloud\n  org_id: o-1\n  auth:\n    api_key: ${TOKEN}\n"
        "  site: {url: 'http://acme.atlassian.net', email: a@example.com, token: '${TOKEN}'}\n"
        "scope: {users: ['*']}\n"), [
        "desired/main.yaml:7:15: target.site.url: http:// to a host that is not this machine sends the "
        "credentials in clear; use https://, or write `insecure: true` on the target to accept that",
    ], True),
    Case("ldap bind in clear, to this machine too", one(
        HEAD + "sources:\n  corp:\n    type: ldap\n    url: ldap://127.0.0.1:389\n"
        "    bind: {dn: cn=x, password: '${TOKEN}'}\n    users: {base: 'dc=example'}\n"), [
        "desired/main.yaml:13:10: sources.corp.url: the bind password would cross the network in clear over "
        "ldap://; use ldaps://, or start_tls: true, or write `insecure: true` on this source to accept that",
    ], True),
    Case("malformed reference", one(HEAD.replace("https://confluence.example.com", "https://${HOST-NAME}")), [
        "desired/main.yaml:4:8: target.url: malformed reference: write ${NAME} (letters, digits and _, not "
        "starting with a digit)",
    ], False),
    Case("duplicate user across files", {
        "main.yaml": HEAD + "users:\n  alice@example.com: {}\n",
        "team.yaml": "users:\n  alice@example.com: {status: disabled}\n",
    }, [
        "desired/team.yaml:2:3: user 'alice@example.com' is defined twice (also at desired/main.yaml:11:3); "
        "define each user once",
    ], False),
    Case("same user with different case", one(HEAD + "users:\n  alice@example.com: {}\n"
                                              "  Alice@Example.COM: {}\n"), [
        "desired/main.yaml:12:3: user 'Alice@Example.COM' is defined twice (also at "
        "desired/main.yaml:11:3); define each user once",
    ], False),
    Case("user named by its username elsewhere", one(HEAD + "users:\n  alice@example.com: {username: al}\n"
                                                     "  al: {}\n"), [
        "desired/main.yaml:12:3: user 'al' is already user 'alice@example.com' (its username or email) at "
        "desired/main.yaml:11:3; define each user once",
    ], False),
    Case("duplicate group", {
        "main.yaml": HEAD + "groups:\n  team-a: {members: [a@example.com]}\n",
        "more.yaml": "groups:\n  TEAM-A:\n",
    }, [
        "desired/more.yaml:2:3: group 'TEAM-A' is defined twice (also at desired/main.yaml:11:3); "
        "define each group once",
    ], False),
    Case("literal secret", one(HEAD.replace("${TOKEN}", "abc123-literal")), [
        "desired/main.yaml:6:12: target.auth.token: literal secret: use ${ENV_VAR} or token_file:",
    ], True),
    Case("missing environment variable", one(HEAD.replace("${TOKEN}", "${NOT_SET}")), [
        "desired/main.yaml:6:12: target.auth.token: environment variable NOT_SET is not set; export it, "
        "or change the reference",
    ], False),
    Case("two ways to authenticate", one(HEAD.replace("    token:", "    username: bob\n    token:")), [
        "desired/main.yaml:5:3: target.auth: give exactly one of: token, token_file, username + password, "
        "username + password_file",
    ], True),
    Case("credentials in the URL", one(HEAD.replace("https://", "https://bob:pw@")), [
        "desired/main.yaml:4:8: target.url: credentials in the URL (not shown here): give them under auth:, "
        "and the URL without them",
    ], True),
    Case("remove-from-site needs site", one(
        "version: 1\ntarget:\n  type: atlassian-cloud\n  org_id: o-1\n  auth:\n    api_key: ${TOKEN}\n"
        "  delete: remove-from-site\nscope: {users: ['*']}\n"), [
        "desired/main.yaml:7:3: target: delete: remove-from-site needs 'site'",
    ], True),
    Case("ldaps with start_tls", one(HEAD + "sources:\n  corp:\n    type: ldap\n    url: ldaps://ldap.example.com\n"
                                     "    start_tls: true\n    users: {base: 'dc=example'}\n"), [
        "desired/main.yaml:14:16: sources.corp.start_tls: an ldaps:// URL is already TLS; use ldap:// with "
        "start_tls: true, or drop start_tls",
    ], False),
    Case("source named yaml", one(HEAD + "sources:\n  yaml: {type: csv, path: users.csv}\n"), [
        "desired/main.yaml:11:3: sources: 'yaml' is not a source name (letters, digits, _ . -; not 'yaml')",
        "desired/main.yaml:11:27: sources.yaml.path: no such file desired/users.csv; fix the path (relative "
        "paths start at the desired directory)",
    ], True),
    Case("unsupported version", one(HEAD.replace("version: 1", "version: 2")), [
        "desired/main.yaml:1:10: version: unsupported version; this tool reads `version: 1`",
    ], True),
    Case("target without version", one(HEAD.replace("version: 1\n", "")), [
        "desired/main.yaml:1:1: 'target' needs 'version' in the same file",
    ], True),
    Case("no target", {"users.yaml": "version: 1\nusers:\n  a@example.com:\n"}, [
        "desired: no target: add a `target:` section to one of the desired files",
    ], False),
    Case("two targets", {"a.yaml": HEAD, "b.yaml": HEAD.replace('["team-*"]', "[]")}, [
        "desired/b.yaml:2:1: 'target' is already defined at desired/a.yaml:2:1; write it once across the "
        "desired files",
        "desired/b.yaml:7:1: 'scope' is already defined at desired/a.yaml:7:1; write it once across the "
        "desired files",
    ], False),
    Case("numeric key", one(HEAD + "users:\n  123: {}\n"), [
        "desired/main.yaml:11:3: users: key 123 is a number; quote it",
    ], False),
    Case("not a mapping", one("- a\n- b\n"), [
        "desired/main.yaml:1:1: the file: expected a mapping, got a list",
    ], True),
    Case("unquoted ${VAR} in a flow mapping", one(HEAD.replace("  auth:\n    token: ${TOKEN}",
                                                               "  auth: {token: ${TOKEN}}")), [
        "desired/main.yaml:5:18: YAML syntax error: expected ',' or '}', but got '{' (while parsing a flow "
        "mapping); an unquoted ${VAR} inside a flow mapping {...} or list [...] is not valid YAML: quote "
        'it (token: "${VAR}") or use block style',
    ], None),
    Case("unquoted ${VAR} in a flow list", one(HEAD.replace('["team-*"]', "[team-*, ${TEAM}]")), [
        "desired/main.yaml:8:21: YAML syntax error: expected ',' or ']', but got '{' (while parsing a flow "
        "sequence); an unquoted ${VAR} inside a flow mapping {...} or list [...] is not valid YAML: quote "
        'it (token: "${VAR}") or use block style',
    ], None),
    Case("an unreadable file hides nothing else, and invents nothing", {
        "main.yaml": HEAD.replace("version: 1", "version: 1\n\tbad: tab"),
        "users.yaml": "users:\n  a@example.com: {groups: [team-a], status: gone}\n",
    }, [
        "desired/main.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token "
        "(while scanning for the next token)",
        "desired/users.yaml:2:45: users.a@example.com.status: unknown value 'gone'; allowed: active, disabled",
    ], None),
    Case("YAML syntax error", one(HEAD + "users:\n\talice@example.com: {}\n"), [
        "desired/main.yaml:11:1: YAML syntax error: found character '\\t' that cannot start any token "
        "(while scanning for the next token)",
    ], None),
    Case("a duplicate YAML key does not hide other problems", one(
        HEAD + "policy:\n  absent: nope\npolicy:\n  absent: delete\n"), [
        "desired/main.yaml:11:11: policy.absent: unknown value 'nope'; allowed: disable, delete, ignore",
        "desired/main.yaml:12:1: duplicate key 'policy' in this mapping (first at line 10, column 1); write "
        "each key once",
    ], None),
    Case("duplicate YAML key never echoes values", one(HEAD.replace(
        "    token: ${TOKEN}", "    token: ${TOKEN}\n    token: hunter2-literal")), [
        "desired/main.yaml:7:5: duplicate key 'token' in this mapping (first at line 6, column 5); write "
        "each key once",
    ], None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_directory_reports_exactly(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "desired", case.files)
    assert problems("desired") == case.expected


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "desired", {"main.yaml": """\
        version: 1
        target:
          type: confluence-dc
          url: ftp://confluence.example.com
          auth:
            token: literal-token
          admin_group: [x]
        scope:
          groups: [team-*]
          users: ["*"]
        policy:
          absent: disabled
          limits: {delete: lots}
        users:
          alice@example.com: {status: gone, groups: [ops]}
          bob@example: {}
        """})
    lines = problems("desired")
    assert [line.split(": ", 1)[0] for line in lines] == [
        "desired/main.yaml:4:8", "desired/main.yaml:6:12", "desired/main.yaml:7:3", "desired/main.yaml:12:11",
        "desired/main.yaml:13:20", "desired/main.yaml:15:31", "desired/main.yaml:15:46",
        "desired/main.yaml:16:3",
    ]
    assert "group 'ops' is outside scope.groups" in lines[-2]


def test_empty_and_missing_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert problems("nowhere") == [
        "nowhere: no such directory; point --desired (or RECONCILE_DESIRED) at the directory holding your "
        "desired *.yaml files"]
    write(tmp_path / "desired", {"notes.yml": HEAD})
    assert problems("desired") == [
        "desired: no *.yaml files in this directory; write one (see `reconcile schema` and desired/ for an "
        "example) or point --desired elsewhere",
        "desired/notes.yml: ignored: desired files must end in .yaml; rename it",
    ]


def test_subdirectories_are_not_read(tmp_path: Path) -> None:
    root = write(tmp_path / "desired", {"main.yaml": HEAD, "examples/other/main.yaml": HEAD})
    assert problems(root) == []
