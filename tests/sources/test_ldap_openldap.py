"""LdapSource against a real OpenLDAP slapd: TLS modes, paging, membership variants, nesting, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket

import pytest

from reconcile.errors import SourceError
from reconcile.model import DesiredState, Status
from reconcile.settings import LdapFlavor, LdapGroupsSettings, LdapSourceSettings, LdapUsersSettings, Secret
from reconcile.sources.ldap import LdapSource
from tests.support.ldap_servers import (
    LIMITED_DN,
    LIMITED_PASSWORD,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    start_slapd,
)
from tests.support.net import free_port

pytestmark = [pytest.mark.ldap, pytest.mark.xdist_group("slapd")]  # one shared slapd, one worker

PEOPLE = "ou=people,dc=example,dc=org"
GROUPS = "ou=groups,dc=example,dc=org"
MAP = (("eng-*", "Confluence-Eng-*"), ("staff", "confluence-users"), ("cyc-*", "team-cyc-*"))


def source_config(server: Slapd, *, tls: str = "start_tls", groups: LdapGroupsSettings | None = None,
                  **changes: object) -> LdapSourceSettings:
    """The usual test source: StartTLS with the fixture's CA, bound as the ordinary service account."""
    config = LdapSourceSettings(
        name="corp",
        url=server.ldaps_url if tls == "ldaps" else server.url,
        start_tls=tls == "start_tls",
        ca_file=server.ca_file,
        timeout=5,
        bind_dn=SERVICE_DN,
        bind_password=Secret(SERVICE_PASSWORD, "${LDAP_PASSWORD}"),
        users=LdapUsersSettings(base=PEOPLE, disabled="(employeeType=disabled)"),
        groups=groups if groups is not None else LdapGroupsSettings(base=GROUPS, nested=True, map=MAP),
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def read(config: LdapSourceSettings) -> DesiredState:
    return asyncio.run(LdapSource(config).read())


def groups_of(state: DesiredState) -> dict[str, list[str]]:
    return {key: sorted(user.groups) for key, user in sorted(state.users.items())}


def read_error(config: LdapSourceSettings) -> str:
    with pytest.raises(SourceError) as caught:
        read(config)
    message = str(caught.value)
    assert SERVICE_PASSWORD not in message and LIMITED_PASSWORD not in message
    assert "Traceback" not in message
    return message


# ------------------------------------------------------------------------------------ connection modes


@pytest.mark.parametrize("tls", ["plain", "start_tls", "ldaps"])
def test_every_connection_mode_reads_the_same_users(slapd: Slapd, tls: str) -> None:
    state = read(source_config(slapd, tls=tls, ca_file=None if tls == "plain" else slapd.ca_file))
    assert sorted(state.users) == ["alice@example.org", "bob.baker@example.org", "carol@example.org",
                                   "dave@example.org", "erin@example.org", "frank@example.org", "grace"]


def test_users_carry_both_keys_display_name_and_source(slapd: Slapd) -> None:
    state = read(source_config(slapd))
    bob = state.users["bob.baker@example.org"]
    assert (bob.key, bob.identity.username, bob.identity.email, bob.display_name) == (
        "bob.baker@example.org", "bob", "bob.baker@example.org", "Bob Baker")
    assert bob.source == "corp"
    assert str(bob.origin).endswith("/uid=bob,ou=people,dc=example,dc=org")
    grace = state.users["grace"]  # no mail: keyed by username
    assert (grace.identity.username, grace.identity.email) == ("grace", None)


def test_flavor_auto_detects_openldap_and_forcing_it_gives_the_same_state(slapd: Slapd) -> None:
    assert read(source_config(slapd)) == read(source_config(slapd, flavor=LdapFlavor.OPENLDAP))


def test_disabled_filter_is_evaluated_by_the_server(slapd: Slapd) -> None:
    state = read(source_config(slapd))
    assert [k for k, u in state.users.items() if u.status is Status.DISABLED] == ["frank@example.org"]
    without = read(source_config(slapd, users=LdapUsersSettings(base=PEOPLE)))
    assert all(u.status is Status.ACTIVE for u in without.users.values())


# ---------------------------------------------------------------------------------------- memberships


def test_member_nested_with_a_cycle_and_mapped_names(slapd: Slapd) -> None:
    state = read(source_config(slapd))
    assert groups_of(state) == {
        "alice@example.org": ["confluence-eng-docs", "confluence-eng-platform", "confluence-users"],
        "bob.baker@example.org": ["confluence-eng-docs", "confluence-eng-platform", "confluence-users"],
        "carol@example.org": ["confluence-eng-docs", "confluence-users"],
        "dave@example.org": ["confluence-users"],
        "erin@example.org": ["team-cyc-a", "team-cyc-b"],  # cyc-a <-> cyc-b: both, and the walk ends
        "frank@example.org": ["team-cyc-a", "team-cyc-b"],
        "grace": [],  # hr and the evil group are not mapped: ignored
    }
    assert state.groups == {"confluence-eng-docs", "confluence-eng-platform", "confluence-users",
                            "team-cyc-a", "team-cyc-b"}


def test_member_without_nesting_counts_direct_members_only(slapd: Slapd) -> None:
    state = read(source_config(slapd, groups=LdapGroupsSettings(base=GROUPS, map=MAP)))
    assert groups_of(state)["alice@example.org"] == ["confluence-eng-platform"]
    assert groups_of(state)["carol@example.org"] == ["confluence-eng-docs"]
    assert groups_of(state)["erin@example.org"] == ["team-cyc-a"]


def test_unique_member_with_its_uid_suffix_and_nesting(slapd: Slapd) -> None:
    groups = LdapGroupsSettings(base="ou=ugroups,dc=example,dc=org", filter="(objectClass=groupOfUniqueNames)",
                              member_attribute="uniqueMember", nested=True, map=(("*", "u-*"),))
    state = read(source_config(slapd, groups=groups))
    assert groups_of(state)["bob.baker@example.org"] == ["u-eng-docs", "u-eng-platform"]  # "#'0101'B" dropped
    assert groups_of(state)["carol@example.org"] == ["u-eng-docs"]


def test_member_uid_matches_usernames_case_insensitively(slapd: Slapd) -> None:
    groups = LdapGroupsSettings(base="ou=posix,dc=example,dc=org", filter="(objectClass=posixGroup)",
                              member_attribute="memberUid", map=(("*", "*"),))
    state = read(source_config(slapd, groups=groups))
    assert {k: v for k, v in groups_of(state).items() if v} == {
        "alice@example.org": ["eng-platform"],
        "bob.baker@example.org": ["eng-platform"],  # memberUid: BOB
        "carol@example.org": ["eng-docs"],  # and "nobody-here" matches no user
    }


@pytest.mark.parametrize("nested", [False, True])
def test_member_of_on_users_gives_what_member_on_groups_gives(slapd: Slapd, nested: bool) -> None:
    by_member = read(source_config(slapd, groups=LdapGroupsSettings(base=GROUPS, nested=nested, map=MAP)))
    by_member_of = read(source_config(slapd, groups=LdapGroupsSettings(
        base=GROUPS, member_attribute="memberOf", nested=nested, map=MAP)))
    assert groups_of(by_member_of) == groups_of(by_member)
    assert by_member_of.groups == by_member.groups


def test_an_empty_map_keeps_every_group_under_its_lower_cased_name(slapd: Slapd) -> None:
    state = read(source_config(slapd, groups=LdapGroupsSettings(base=GROUPS)))
    assert groups_of(state)["grace"] == ["evil*)(cn=*", "hr"]
    assert groups_of(state)["alice@example.org"] == ["eng-platform"]


def test_first_matching_map_rule_wins(slapd: Slapd) -> None:
    rules = (("eng-docs", "docs"), ("eng-*", "eng"), ("*", "all-*"))
    state = read(source_config(slapd, groups=LdapGroupsSettings(base=GROUPS, map=rules)))
    assert groups_of(state)["carol@example.org"] == ["docs"]
    assert groups_of(state)["alice@example.org"] == ["eng"]
    assert groups_of(state)["dave@example.org"] == ["all-staff"]


# -------------------------------------------------------------------------------------------- paging


@pytest.mark.parametrize("page_size", [100, 500, 1000])
def test_paging_returns_every_entry_beyond_the_500_entry_soft_limit(slapd: Slapd, page_size: int) -> None:
    config = source_config(
        slapd, page_size=page_size, users=LdapUsersSettings(base="ou=bulk,dc=example,dc=org"),
        groups=LdapGroupsSettings(base="ou=bulkgroups,dc=example,dc=org", map=(("bulk-all", "everyone"),)))
    state = read(config)
    assert len(state.users) == 1200
    assert all(u.groups == {"everyone"} for u in state.users.values())


def test_a_size_limit_is_an_error_never_a_truncated_list(slapd: Slapd) -> None:
    config = source_config(slapd, bind_dn=LIMITED_DN, bind_password=Secret(LIMITED_PASSWORD, "${LIMITED}"),
                           users=LdapUsersSettings(base="ou=bulk,dc=example,dc=org"), groups=None)
    message = read_error(config)
    assert "size limit exceeded" in message
    assert "LDAP result 4" in message and "size.prtotal" in message


# -------------------------------------------------------------------------------------------- errors


def test_unreachable_server_names_host_and_port(slapd: Slapd) -> None:
    port = free_port()  # nothing listens there
    message = read_error(source_config(slapd, tls="plain", url=f"ldap://127.0.0.1:{port}", start_tls=False))
    assert f"cannot reach 127.0.0.1:{port}" in message
    assert "firewall" in message


def test_bad_credentials(slapd: Slapd) -> None:
    message = read_error(source_config(slapd, bind_password=Secret("wrong-password", "${LDAP_PASSWORD}")))
    assert "invalid credentials" in message and SERVICE_DN in message
    assert "wrong-password" not in message


def test_bad_base_dn_is_named(slapd: Slapd) -> None:
    message = read_error(source_config(slapd, users=LdapUsersSettings(base="ou=nowhere,dc=example,dc=org")))
    assert "no such object" in message and "'ou=nowhere,dc=example,dc=org'" in message


def test_invalid_filter_is_named(slapd: Slapd) -> None:
    message = read_error(source_config(slapd, users=LdapUsersSettings(base=PEOPLE, filter="(&(uid=a)(")))
    assert "invalid LDAP filter" in message and "(&(uid=a)(" in message


@pytest.mark.parametrize("tls", ["start_tls", "ldaps"])
def test_tls_verification_fails_without_the_ca_and_names_the_option(slapd: Slapd, tls: str) -> None:
    message = read_error(source_config(slapd, tls=tls, ca_file=None))
    assert "TLS verification" in message and "system trust store" in message and "ca_file" in message


@pytest.mark.parametrize("tls", ["start_tls", "ldaps"])
def test_tls_verification_checks_the_host_name(tmp_path_factory: pytest.TempPathFactory, tls: str) -> None:
    """The CA is right, but the certificate names another host: refused all the same."""
    from tests.support.ldap_servers import DATA, require_slapd

    require_slapd()
    server = start_slapd(tmp_path_factory.mktemp("slapd-wrong-name"), (DATA / "directory.ldif").read_text(),
                         cert_names=("DNS:ldap.elsewhere.test",))
    try:
        message = read_error(source_config(server, tls=tls))
        assert "TLS verification" in message and f"ca_file '{server.ca_file}'" in message
        assert "doesn't match" in message or "mismatch" in message
    finally:
        server.stop()


def test_a_server_without_tls_refuses_start_tls_and_nothing_is_sent_in_clear(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.support.ldap_servers import DATA, require_slapd

    require_slapd()
    server = start_slapd(tmp_path_factory.mktemp("slapd-no-tls"), (DATA / "directory.ldif").read_text(), tls=False)
    try:
        message = read_error(source_config(server))
        assert f"127.0.0.1:{server.port} refused StartTLS" in message and "ldaps://" in message
    finally:
        server.stop()


def test_a_stuck_server_times_out(private_slapd: Slapd) -> None:
    os.kill(private_slapd.proc.pid, signal.SIGSTOP)  # the kernel still accepts; nobody answers
    try:
        message = read_error(source_config(private_slapd, tls="plain", start_tls=False, timeout=1))
        assert "1 s" in message and ("timeout" in message or "did not answer" in message)
    finally:
        os.kill(private_slapd.proc.pid, signal.SIGCONT)


def test_a_server_that_accepts_but_never_speaks_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        config = LdapSourceSettings(name="corp", url=f"ldap://127.0.0.1:{port}", timeout=1,
                                  users=LdapUsersSettings(base=PEOPLE))
        with pytest.raises(SourceError, match=r"within 1 s"):
            read(config)


def test_wrong_url_is_refused_before_any_connection() -> None:
    with pytest.raises(SourceError, match="is not ldap://host"):
        LdapSource(LdapSourceSettings(name="corp", url="http://ldap.example.com", users=LdapUsersSettings(base=PEOPLE)))


def test_the_password_never_reaches_the_logs(slapd: Slapd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    read(source_config(slapd))
    read_error(source_config(slapd, users=LdapUsersSettings(base="ou=nowhere,dc=example,dc=org")))
    assert "corp" in caplog.text
    assert SERVICE_PASSWORD not in caplog.text


# --------------------------------------------------------------------------------------------- empty


def test_a_wrong_filter_yields_the_empty_state(slapd: Slapd) -> None:
    state = read(source_config(slapd, users=LdapUsersSettings(base=PEOPLE, filter="(objectClass=posixAccount)")))
    assert state.users == {}
