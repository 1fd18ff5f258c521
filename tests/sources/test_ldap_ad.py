"""LdapSource against a real Samba AD DC: userAccountControl, in-chain nesting, ranged member values."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from reconcile.errors import SourceError
from reconcile.model import DesiredState, Status
from reconcile.settings import LdapFlavor, LdapGroupsSettings, LdapSourceSettings, LdapUsersSettings, Secret
from reconcile.sources.ldap import LdapSource
from reconcile.sources.ldap.source import in_chain_filter
from tests.support.cli import reconcile
from tests.support.ldap_servers import AD_ADMIN, AD_BIG_GROUP_SIZE, AD_OU, AD_PASSWORD, SambaAd

pytestmark = [pytest.mark.ad, pytest.mark.xdist_group("samba-ad")]

PEOPLE = f"OU=people,{AD_OU}"
GROUPS = f"OU=groups,{AD_OU}"
USERS_FILTER = "(&(objectClass=user)(!(objectClass=computer)))"
MAP = (("eng-*", "confluence-eng-*"), ("staff", "confluence-users"), ("cyc-*", "team-cyc-*"), ("evil*", "evil"))


def ad_config(server: SambaAd, *, tls: str = "ldaps", users_base: str = PEOPLE,
              groups: LdapGroupsSettings | None = None, **changes: object) -> LdapSourceSettings:
    config = LdapSourceSettings(
        name="ad",
        url=server.ldaps_url if tls == "ldaps" else server.url,
        start_tls=tls == "start_tls",
        ca_file=server.ca_file,
        timeout=10,
        bind_dn=AD_ADMIN,
        bind_password=Secret(AD_PASSWORD, "${AD_PASSWORD}"),
        users=LdapUsersSettings(base=users_base, filter=USERS_FILTER, username="sAMAccountName", email="mail",
                              name="displayName"),
        groups=groups if groups is not None else LdapGroupsSettings(
            base=GROUPS, filter="(objectClass=group)", nested=True, map=MAP),
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def groups_of(state: DesiredState) -> dict[str, list[str]]:
    return {key: sorted(user.groups) for key, user in sorted(state.users.items())}


@pytest.mark.parametrize("tls", ["ldaps", "start_tls", "plain"])
def test_ad_users_over_every_connection_mode(samba_ad: SambaAd, tls: str) -> None:
    state = asyncio.run(LdapSource(ad_config(samba_ad, tls=tls)).read())
    assert sorted(state.users) == ["alice@example.test", "bob.baker@example.test", "carol@example.test",
                                   "dave@example.test", "erin@example.test", "grace", "mallory@example.test"]
    alice = state.users["alice@example.test"]
    assert (alice.identity.username, alice.display_name, alice.source) == ("alice", "Alice Archer", "ad")


def test_ad_is_detected_from_the_root_dse(samba_ad: SambaAd) -> None:
    detected = asyncio.run(LdapSource(ad_config(samba_ad)).read())
    forced = asyncio.run(LdapSource(ad_config(samba_ad, flavor=LdapFlavor.ACTIVE_DIRECTORY)).read())
    assert detected == forced
    assert detected.users["mallory@example.test"].status is Status.DISABLED  # only AD reads userAccountControl


def test_user_account_control_bit_2_disables(samba_ad: SambaAd) -> None:
    state = asyncio.run(LdapSource(ad_config(samba_ad)).read())
    assert [k for k, u in state.users.items() if u.status is Status.DISABLED] == ["mallory@example.test"]


def test_a_disabled_filter_adds_to_user_account_control_on_ad(samba_ad: SambaAd) -> None:
    config = ad_config(samba_ad)
    config = dataclasses.replace(config, users=dataclasses.replace(config.users, disabled="(sAMAccountName=grace)"))
    state = asyncio.run(LdapSource(config).read())
    assert sorted(k for k, u in state.users.items() if u.status is Status.DISABLED) == [
        "grace", "mallory@example.test"]


def test_in_chain_nesting_with_a_cycle(samba_ad: SambaAd) -> None:
    state = asyncio.run(LdapSource(ad_config(samba_ad)).read())
    assert groups_of(state) == {
        "alice@example.test": ["confluence-eng-docs", "confluence-eng-platform", "confluence-users"],
        "bob.baker@example.test": ["confluence-eng-docs", "confluence-eng-platform", "confluence-users"],
        "carol@example.test": ["confluence-eng-docs", "confluence-users"],
        "dave@example.test": ["confluence-users"],
        "erin@example.test": ["team-cyc-a", "team-cyc-b"],
        "mallory@example.test": ["team-cyc-a", "team-cyc-b"],
        "grace": ["evil"],  # the hostile group name was escaped into the in-chain filter
    }


def test_the_recursive_walk_agrees_with_the_server_in_chain(samba_ad: SambaAd) -> None:
    """`flavor: openldap` against AD makes the source walk the groups itself: same answer."""
    in_chain = asyncio.run(LdapSource(ad_config(samba_ad)).read())
    walked = asyncio.run(LdapSource(ad_config(samba_ad, flavor=LdapFlavor.OPENLDAP)).read())
    assert groups_of(walked) == groups_of(in_chain)


def test_member_of_on_users_direct_and_nested(samba_ad: SambaAd) -> None:
    direct = asyncio.run(LdapSource(ad_config(samba_ad, groups=LdapGroupsSettings(
        base=GROUPS, filter="(objectClass=group)", member_attribute="memberOf", map=MAP))).read())
    assert groups_of(direct)["alice@example.test"] == ["confluence-eng-platform"]
    nested = asyncio.run(LdapSource(ad_config(samba_ad, groups=LdapGroupsSettings(
        base=GROUPS, filter="(objectClass=group)", member_attribute="memberOf", nested=True, map=MAP))).read())
    assert groups_of(nested)["alice@example.test"] == [
        "confluence-eng-docs", "confluence-eng-platform", "confluence-users"]


@pytest.mark.parametrize("nested", [False, True])
def test_a_group_beyond_1500_members_is_read_whole(samba_ad: SambaAd, nested: bool) -> None:
    """nested=False reads `member;range=0-1499`, then the next ranges; nested=True asks in chain."""
    config = ad_config(samba_ad, users_base=AD_OU, groups=LdapGroupsSettings(
        base=GROUPS, filter="(objectClass=group)", nested=nested, map=(("big", "everyone"),)))
    state = asyncio.run(LdapSource(config).read())
    members = [k for k, u in state.users.items() if "everyone" in u.groups]
    assert len(members) == AD_BIG_GROUP_SIZE > 1500
    assert "b01599@bulk.example.test" in members and "alice@example.test" not in members


def test_in_chain_filter_escapes_the_group_dn() -> None:
    assert in_chain_filter("objectClass=user", "CN=evil*)(cn=*,OU=g,DC=x") == (
        r"(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=CN=evil\2a\29\28cn=\2a,OU=g,DC=x))")


def test_ad_bad_credentials(samba_ad: SambaAd) -> None:
    with pytest.raises(SourceError) as caught:
        asyncio.run(LdapSource(ad_config(samba_ad, bind_password=Secret("Wrong!Passw0rd", "${AD_PASSWORD}"))).read())
    message = str(caught.value)
    assert "invalid credentials" in message and AD_ADMIN in message and "Wrong!Passw0rd" not in message


def test_ad_bad_base_dn(samba_ad: SambaAd) -> None:
    base = f"OU=nowhere,{AD_OU}"
    with pytest.raises(SourceError, match="no such object") as caught:
        asyncio.run(LdapSource(ad_config(samba_ad, users_base=base)).read())
    assert repr(base) in str(caught.value)


def test_ad_tls_verification_without_the_ca(samba_ad: SambaAd) -> None:
    with pytest.raises(SourceError, match=r"TLS verification .* failed against the system trust store"):
        asyncio.run(LdapSource(ad_config(samba_ad, ca_file=None)).read())


def test_reconcile_plan_from_active_directory_against_a_simulated_site(samba_ad: SambaAd, tmp_path) -> None:
    """Issue 6 acceptance: AD (nested groups, a disabled user, a 1,600-member group) -> a simulated
    Confluence DC site, through `reconcile plan` / `apply` / `plan`: the exact SPEC §5 plan, then none."""
    import httpx

    from reconcile.plan import Plan
    from reconcile.sim.server import SimOptions, configured_app, running

    named = {"alice": "alice@example.test", "bob": "bob.baker@example.test", "carol": "carol@example.test",
             "dave": "dave@example.test", "erin": "erin@example.test", "mallory": "mallory@example.test",
             "grace": None}
    bulk = [f"b{i:05d}" for i in range(AD_BIG_GROUP_SIZE)]
    lines = ["confluence_dc:", "  version: '9.4'", "  websudo: false", "  users:",
             "    - {username: admin, password: admin, tokens: [ad-test-token]}"]
    for sam, mail in named.items():
        lines.append(f"    - {{username: {sam}" + (f", email: {mail}" if mail else "") + "}")
    lines += [f"    - {{username: {sam}, email: {sam}@bulk.example.test}}" for sam in bulk]
    lines += ["  groups:",
              "    - {name: confluence-administrators, members: [admin]}",
              "    - {name: team-eng-platform, members: [alice]}",
              "    - {name: team-eng-docs, members: [carol, grace]}",  # grace is not in eng-docs in AD
              "    - {name: team-staff, members: []}",
              "    - {name: team-cyc-a, members: [erin]}",
              "    - {name: team-cyc-b, members: []}",
              # all but the last ten: a read cut at AD's 1,500-value range step would remove the other 90
              f"    - {{name: team-big, members: [{', '.join(bulk[:-10])}]}}"]
    (tmp_path / "world.yaml").write_text("\n".join(lines) + "\n")
    desired = tmp_path / "desired"
    desired.mkdir()
    with running(configured_app(SimOptions(scenario=tmp_path / "world.yaml"))) as url:
        (desired / "site.yaml").write_text(f"""\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth:
    token: ${{CONFLUENCE_TOKEN}}
sources:
  ad:
    type: ldap
    url: {samba_ad.ldaps_url}
    ca_file: {samba_ad.ca_file}
    bind:
      dn: "{AD_ADMIN}"
      password: ${{AD_PASSWORD}}
    users:
      base: "{AD_OU}"
      filter: "{USERS_FILTER}"
      username: sAMAccountName
      email: mail
      name: displayName
    groups:
      base: "{GROUPS}"
      filter: "(objectClass=group)"
      member_attribute: member
      nested: true
      map: {{"eng-*": "team-eng-*", "staff": "team-staff", "cyc-*": "team-cyc-*", "big": "team-big"}}
    flavor: active-directory
scope:
  users: ["*"]
  groups: ["team-*"]
policy:
  absent: disable
""")
        env = {"CONFLUENCE_TOKEN": "ad-test-token", "AD_PASSWORD": AD_PASSWORD, "NO_COLOR": "1", "USER": "t"}

        def run(*args: str) -> tuple[int, str]:
            result = reconcile("--desired", str(desired), "--state-dir", str(tmp_path / "s"), *args,
                                        env=env)
            return result.exit_code, result.output

        code, out = run("plan", "--out", str(tmp_path / "plan.json"))
        assert code == 0, out
        plan = Plan.loads((tmp_path / "plan.json").read_text())
        got = {(str(a.kind), a.subject.identity, a.group) for a in plan.actions}
        expected = {
            ("disable", "mallory@example.test", None),  # userAccountControl bit 2
            # nested: eng-docs contains eng-platform; staff contains eng-docs
            ("add_member", "bob.baker@example.test", "team-eng-platform"),
            ("add_member", "alice@example.test", "team-eng-docs"),
            ("add_member", "bob.baker@example.test", "team-eng-docs"),
            ("remove_member", "grace", "team-eng-docs"),
            *{("add_member", who, "team-staff") for who in
              ("alice@example.test", "bob.baker@example.test", "carol@example.test", "dave@example.test")},
            # the cycle cyc-a <-> cyc-b: both hold erin and mallory
            ("add_member", "mallory@example.test", "team-cyc-a"),
            ("add_member", "erin@example.test", "team-cyc-b"),
            ("add_member", "mallory@example.test", "team-cyc-b"),
            # over 1,500 members: read by ranges, every one of them (no remove_member from team-big)
            *{("add_member", f"{sam}@bulk.example.test", "team-big") for sam in bulk[-10:]},
        }
        assert got == expected
        assert ("protected", "admin") in {(str(w.kind), w.subject) for w in plan.warnings}

        code, out = run("apply", str(tmp_path / "plan.json"), "--approve", plan.digest)
        assert code == 0, out
        code, out = run("plan", "--detailed-exitcode")
        assert code == 0, out
        assert httpx.get(f"{url}/_sim/stats").json()["violations"] == 0
