"""load() turns valid directories into the typed values the rest of the tool uses."""

from __future__ import annotations

from pathlib import Path

from reconcile.model import AbsentPolicy, DesiredUser, Globs, Limit, Location, Status, UnsyncedPolicy
from reconcile.settings import (
    AtlassianCloudSettings,
    CloudDelete,
    CloudDisable,
    ConfluenceDcSettings,
    CsvSourceSettings,
    LdapFlavor,
    LdapSourceSettings,
    MemorySettings,
)
from tests.support.config import HEAD, load, write

GOOD = Path(__file__).resolve().parents[1] / "data" / "config" / "good"


def test_spec_example() -> None:
    directory = GOOD / "spec-example"
    config = load(directory, {"CONFLUENCE_TOKEN": "pat-1", "LDAP_PASSWORD": "pw-1"})
    target = config.target
    assert isinstance(target, ConfluenceDcSettings)
    assert (target.url, target.token and target.token.reveal(), target.username) == (
        "https://confluence.example.com", "pat-1", None)
    assert target.admin_groups == Globs(("confluence-administrators",))
    assert target.readonly_groups == Globs(("ldap-*",))
    assert config.scope.users == Globs(("*@example.com",))
    assert config.scope.groups == Globs(("confluence-users", "confluence-eng-*", "team-*"))
    assert config.scope.protect == Globs(("admin", "svc-*"))
    assert config.policy.absent is AbsentPolicy.DISABLE
    assert config.policy.unsynced is UnsyncedPolicy.DELETE
    assert config.policy.limits == {"delete": Limit(25), "disable": Limit(10, percent=True),
                                    "remove_member": Limit(20, percent=True)}
    corp = config.sources["corp"]
    assert isinstance(corp, LdapSourceSettings)
    assert (corp.url, corp.start_tls, corp.timeout, corp.bind_dn, corp.flavor) == (
        "ldaps://ldap.example.com", False, 10.0, "cn=reconcile,ou=svc,dc=example,dc=com", LdapFlavor.AUTO)
    assert corp.bind_password is not None and corp.bind_password.reveal() == "pw-1"
    assert corp.users.disabled == "(employeeType=disabled)"
    assert corp.groups is not None and corp.groups.map == (("eng-*", "confluence-eng-*"),)
    assert corp.groups.nested is True
    main = str(directory / "main.yaml")
    # Membership is the union of users.<key>.groups and groups.<g>.members; carol is named only as a member.
    assert dict(config.inline.users) == {
        "alice@example.com": DesiredUser("alice@example.com", groups=frozenset({"team-docs", "team-platform"}),
                                         origin=Location(main, 45, 3)),
        "bob@example.com": DesiredUser("bob@example.com", status=Status.DISABLED, origin=Location(main, 46, 3)),
        "carol@example.com": DesiredUser("carol@example.com", groups=frozenset({"team-platform"}),
                                         origin=Location(main, 48, 48)),
    }
    assert config.inline.groups == {"team-docs", "team-platform"}
    assert config.files == (main,)


def test_cloud_configuration_split_over_files() -> None:
    directory = GOOD / "cloud-split"
    config = load(directory, {"ATLASSIAN_ORG_ID": "org-9", "ATLASSIAN_SITE_TOKEN": "site-tok"})
    target = config.target
    assert isinstance(target, AtlassianCloudSettings)
    assert (target.org_id, target.url, target.directory) == ("org-9", "https://api.atlassian.com", "-")
    assert (target.disable, target.delete) == (CloudDisable.DEACTIVATE, CloudDelete.REMOVE_FROM_SITE)
    assert target.api_key.reveal() == "api-key-from-file"
    assert target.site is not None and target.site.token.reveal() == "site-tok"
    assert (target.http.timeout, target.http.concurrency) == (12.5, 4)
    assert config.policy.limits == {"delete": Limit(5), "remove_member": Limit(12.5, percent=True)}
    users = config.inline.users
    assert users["alice@example.com"].display_name == "Alice Example"
    assert users["alice@example.com"].groups == {"team-docs", "jira-users"}
    assert users["5b10ac8d82e05b22cc7d4ef5"].identity.email == "bob@example.org"
    assert users["5b10ac8d82e05b22cc7d4ef5"].status is Status.DISABLED
    # A member written with other case is the same user; the key keeps how users: wrote it.
    assert users["carol@example.com"].key == "carol@example.com"
    assert users["carol@example.com"].groups == {"team-docs"}
    assert users["dave@example.com"].groups == {"team-docs"}
    assert config.inline.groups == {"team-docs", "team-empty", "jira-users"}


def test_memory_target_and_csv_source_paths_are_relative_to_the_directory() -> None:
    directory = GOOD / "memory-csv"
    config = load(directory, {})
    assert config.target == MemorySettings(state=str(directory / "world.json"), admin_groups=Globs(("site-admins",)),
                                         readonly_groups=Globs(("ldap-*",)), delay=0.01)
    assert config.sources["export"] == CsvSourceSettings(
        name="export", path=str(directory / "users.csv"), allow_empty=True,
        origin=Location(str(directory / "main.yaml"), 10, 3))
    assert config.policy.allow_empty is True


def test_defaults(tmp_path: Path) -> None:
    head = HEAD.replace('  groups: ["team-*"]\n', "")
    config = load(write(tmp_path, {"main.yaml": head + "users:\n  bob:\n"}))
    assert config.scope.users == Globs(("*",)) and config.scope.groups == Globs()
    assert config.policy.absent is AbsentPolicy.DISABLE and config.policy.unsynced is UnsyncedPolicy.IGNORE
    assert config.policy.limits == {} and config.policy.allow_empty is False
    assert isinstance(config.target, ConfluenceDcSettings)
    assert config.target.admin_groups == Globs(("confluence-administrators",))
    assert config.target.http.concurrency == 16  # a DC site's own default (reconcile/settings.py)
    assert config.inline.users["bob"].status is Status.ACTIVE


def test_concurrency_defaults_to_16_on_a_dc_site_and_8_elsewhere_unless_given(tmp_path: Path) -> None:
    def concurrency(name: str, text: str) -> int:
        target = load(write(tmp_path / name, {"main.yaml": text}), {"TOKEN": "x", "KEY": "y"}).target
        assert isinstance(target, ConfluenceDcSettings | AtlassianCloudSettings)
        return target.http.concurrency

    dc_http = HEAD.replace("    token: ${TOKEN}\n", "    token: ${TOKEN}\n  http:\n    timeout: 5\n")
    cloud = HEAD.replace("  type: confluence-dc\n  url: https://confluence.example.com\n  auth:\n    token: ${TOKEN}\n",
                         "  type: atlassian-cloud\n  org_id: org-1\n  auth:\n    api_key: ${KEY}\n")
    assert concurrency("dc", HEAD) == 16
    assert concurrency("dc-http", dc_http) == 16  # an http block without the key keeps the site's default
    assert concurrency("dc-4", dc_http.replace("timeout: 5", "concurrency: 4")) == 4
    assert concurrency("cloud", cloud) == 8
    assert concurrency("cloud-http", cloud.replace("${KEY}\n", "${KEY}\n  http:\n    timeout: 5\n")) == 8


def test_members_find_users_by_their_extra_keys(tmp_path: Path) -> None:
    config = load(write(tmp_path, {"main.yaml": HEAD + """\
users:
  alice@example.com: {username: alice, groups: [team-a]}
groups:
  team-b: {members: [ALICE]}
"""}))
    assert list(config.inline.users) == ["alice@example.com"]
    assert config.inline.users["alice@example.com"].groups == {"team-a", "team-b"}
    assert config.inline.users["alice@example.com"].identity.username == "alice"


def test_environment_references_embedded_in_other_values(tmp_path: Path) -> None:
    text = HEAD.replace("https://confluence.example.com", "https://${HOST}:8443/${CTX}")
    config = load(write(tmp_path, {"main.yaml": text}), {"HOST": "wiki.example.com", "CTX": "confluence",
                                                          "TOKEN": "x"})
    assert isinstance(config.target, ConfluenceDcSettings)
    assert config.target.url == "https://wiki.example.com:8443/confluence"


def test_basic_auth_and_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n")
    text = HEAD.replace("    token: ${TOKEN}", "    username: reconcile-bot\n    password_file: pw")
    config = load(write(tmp_path, {"main.yaml": text}), {})
    assert isinstance(config.target, ConfluenceDcSettings)
    assert config.target.token is None and config.target.username == "reconcile-bot"
    assert config.target.password is not None and config.target.password.reveal() == "hunter2"
    assert config.target.password.reference == f"file:{tmp_path / 'pw'}"


def test_empty_sections_and_comment_only_files_are_fine(tmp_path: Path) -> None:
    config = load(write(tmp_path, {"main.yaml": HEAD + "users:\ngroups:\npolicy:\n",
                                   "notes.yaml": "# nothing here yet\n"}))
    assert config.inline.users == {} and len(config.files) == 2
