"""Typos must not pass quietly (issue 11, item 11): did-you-mean against the target's names, no
"matches" while warnings stand, and `--strict` / RECONCILE_STRICT turning warnings into exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconcile.diff import diff
from reconcile.model import ActualState, DesiredState, DesiredUser, Globs, Group, Policy, Scope, User
from reconcile.suggest import Suggestions, closest
from tests.support.apply import DESIRED_YAML, WORLD, read_world
from tests.support.builders import NOW
from tests.support.cli import Cli, make_cli

CONVERGED = WORLD | {
    "users": [u | {"status": {"u-erin": "active", "u-dave": "disabled"}.get(u["ref"], u.get("status", "active"))}
              for u in WORLD["users"]],
    "groups": [
        {"name": "confluence-administrators", "members": ["u-admin"]},
        {"name": "team-docs", "members": ["u-carol", "u-out"]},
        {"name": "team-eng", "members": ["u-alice", "u-bob"]},
        {"name": "team-ldap", "members": [], "readonly": True},
    ],
}


def converged_cli(tmp: Path, users_yaml: str) -> Cli:
    """The fixture world after its plan was applied (dave is disabled), with these desired users."""
    cli = make_cli(tmp)
    cli.state.write_text(json.dumps(CONVERGED))
    head = DESIRED_YAML.format(state=cli.state).split("users:\n")[0]
    (cli.desired / "reconcile.yaml").write_text(head + "users:\n" + users_yaml)
    return cli


USERS = """\
  alice@example.com: {groups: [team-eng]}
  bob@example.com: {groups: [team-eng]}
  carol@example.com: {groups: [team-docs]}
  erin@example.com: {}
"""


def test_a_converged_target_with_a_misspelt_group_never_says_it_matches(tmp_path: Path) -> None:
    typo = USERS.replace("{groups: [team-eng]}\n  bob", "{groups: [team-eng, team-dcos]}\n  bob")
    cli = converged_cli(tmp_path, typo)

    result = cli("plan", "--detailed-exitcode")

    assert result.exit_code == 0, result.output
    assert "team-dcos: desired group does not exist on the target; did you mean team-docs?" in result.stdout
    assert "No changes, but 2 warnings need attention." in result.stdout  # the typo, and protected admin
    assert "matches" not in result.output


def test_a_misspelt_user_names_the_account_and_what_the_plan_does_to_it(tmp_path: Path) -> None:
    cli = converged_cli(tmp_path, USERS.replace("alice@", "alcie@"))

    result = cli("plan")

    assert result.exit_code == 0, result.output
    assert ("alcie@example.com: desired user does not exist on the target (reconcile does not create "
            "accounts); did you mean alice@example.com, whom this plan disables?") in result.stdout


def test_strict_makes_warnings_exit_1_and_changes_nothing(tmp_path: Path) -> None:
    cli = converged_cli(tmp_path, USERS.replace("alice@", "alcie@"))
    before = read_world(cli.state)

    planned = cli("plan", "--strict", "--out", str(tmp_path / "p.json"))
    from_env = cli("plan", env={"RECONCILE_STRICT": "1"})
    after_command = cli("-q", "plan", "--strict")  # also after the command; -q: the summary and the error
    applied = cli("apply", "--auto-approve", "--strict")

    for result in (planned, from_env, after_command, applied):
        assert result.exit_code == 1, result.output
        assert "--strict: the plan has 2 warnings; nothing was written or changed" in result.output
        assert "did you mean alice@example.com, whom this plan disables?" in result.output
    assert after_command.stdout.strip() == ("Plan: 0 to enable, 0 to add, 0 to remove, 1 to disable, 0 to delete. "
                                            "1 licence seat freed.")
    assert not (tmp_path / "p.json").exists()
    assert read_world(cli.state) == before
    assert cli("plan").exit_code == 0  # without --strict, warnings stay warnings


def test_suggestions_are_case_insensitive_and_name_the_groups_changes() -> None:
    users = [User(ref=f"u-{n}", username=n, email=f"{n}@example.com") for n in ("alice", "bob", "zed")]
    actual = ActualState.build(users, [Group("team-eng", "g1")], {"team-eng": ["u-bob", "u-zed"]})
    desired = DesiredState.build([DesiredUser("ALCIE"), DesiredUser("bob", groups=frozenset({"Team-Egn"})),
                                  DesiredUser("zed", groups=frozenset({"team-egn"}))])

    scope = Scope(groups=Globs(("*",)))
    plan = diff(desired, actual, scope=scope, policy=Policy(), target={"type": "memory"}, now=NOW)

    messages = {w.subject: w.message for w in plan.warnings}
    assert messages["ALCIE"].endswith("did you mean alice, whom this plan disables?")
    assert messages["team-egn"].endswith("did you mean team-eng, from which this plan removes bob and zed?")
    assert closest("bob@example.com", ["zed@example.com"]) is None  # a shared domain is no likeness
    assert closest("carol", ["alice", "bob"]) is None


def test_a_large_site_is_searched_through_the_index_with_the_same_answers() -> None:
    users = [User(ref=f"u{i}", username=f"user{i:05d}", email=f"user{i:05d}@example.com") for i in range(6000)]
    users.append(User(ref="u-alice", username="alice", email="alice@example.com"))
    suggest = Suggestions(ActualState.build(users), [])

    assert len(suggest.users.names) > suggest.users.WHOLE  # the indexed path, not the whole comparison
    assert suggest.user("usre01234@example.com") == "; did you mean user01234@example.com?"
    assert suggest.user("Alcie") == "; did you mean alice?"
    assert suggest.user("alice@exmaple.com") == "; did you mean alice@example.com?"
    assert suggest.user("nobody-like-this") == ""
