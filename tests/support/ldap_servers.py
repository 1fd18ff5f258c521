"""Real directory servers for the LDAP tests: a throwaway OpenLDAP slapd and a Samba AD DC.

Both run as plain child processes in a temporary directory and stop at the end of the session.
A folder's conftest.py provides the fixtures: `from tests.support.ldap_servers import slapd_fixture  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_port

DATA = Path(__file__).resolve().parents[1] / "data" / "ldap"
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SAMBA = "/usr/sbin/samba"
SUFFIX = "dc=example,dc=org"
SERVICE_DN = f"cn=reconcile,ou=svc,{SUFFIX}"
SERVICE_PASSWORD = "reconcile-test-pw"
LIMITED_DN = f"cn=limited,ou=svc,{SUFFIX}"
LIMITED_PASSWORD = "limited-test-pw"
BULK_USERS = 1200  # more than slapd's 500-entry soft limit: only paging returns them all
BULK_GROUPS = 520


def self_signed(directory: Path, cn: str, names: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1")) -> Path:
    """A P-256 self-signed certificate (cert.pem, key.pem 0600) with the given subjectAltNames."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", f"/CN={cn}", "-addext", "subjectAltName=" + ",".join(names),
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True, capture_output=True,
    )
    os.chmod(directory / "key.pem", 0o600)
    return directory / "cert.pem"


# ---------------------------------------------------------------------------------------- OpenLDAP

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/dyngroup.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile {d}/slapd.pid
TLSCertificateFile {tls}/cert.pem
TLSCertificateKeyFile {tls}/key.pem
# the common production setting: plain searches stop at 500, paged searches may go on
sizelimit size.soft=500 size.hard=unlimited size.prtotal=unlimited
database mdb
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw admin-test-pw
directory {d}/db
maxsize 4294967296
index objectClass,uid,cn,mail,member,memberUid,uniqueMember,employeeType eq
# a deliberately capped account: even paged searches stop after 500 entries
limits dn.exact="{limited}" size.soft=500 size.hard=500 size.prtotal=500
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
# memberOf kept on members of groupOfNames, groups included (direct only: nesting is ours).
# slapadd bypasses overlays, so the loaded LDIF carries memberOf itself (see with_member_of).
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
overlay refint
refint_attributes member uniqueMember
"""


@dataclass
class Slapd:
    """A running throwaway slapd: ldap:// (StartTLS capable) and ldaps:// on 127.0.0.1."""

    port: int
    ldaps_port: int
    ca_file: str
    directory: Path
    proc: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    base: str = SUFFIX

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def bulk_ldif(users: int = BULK_USERS, groups: int = BULK_GROUPS, suffix: str = SUFFIX) -> str:
    """ou=bulk with `users` people and ou=bulkgroups with `groups` small groups plus `bulk-all`."""
    out = [f"dn: ou=bulk,{suffix}\nobjectClass: organizationalUnit\nou: bulk\n",
           f"dn: ou=bulkgroups,{suffix}\nobjectClass: organizationalUnit\nou: bulkgroups\n"]
    dns = [f"uid=u{i:05d},ou=bulk,{suffix}" for i in range(users)]
    for i, dn in enumerate(dns):
        out.append(f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: u{i:05d}\ncn: Bulk {i}\nsn: {i}\n"
                   f"mail: u{i:05d}@bulk.example.org\n")
    for g in range(groups):
        out.append(f"dn: cn=bg{g:04d},ou=bulkgroups,{suffix}\nobjectClass: groupOfNames\ncn: bg{g:04d}\n"
                   f"member: {dns[g % users]}\n")
    out.append(f"dn: cn=bulk-all,ou=bulkgroups,{suffix}\nobjectClass: groupOfNames\ncn: bulk-all\n"
               + "".join(f"member: {dn}\n" for dn in dns))
    return "\n".join(out) + "\n"


def _dn(text: str) -> str:
    return ",".join(part.strip() for part in text.strip().lower().split(","))


def with_member_of(ldif: str) -> str:
    """`ldif` with the memberOf values the memberof overlay would have written on live adds."""
    entries = [e for e in ldif.split("\n\n") if e.strip()]
    parents: dict[str, list[str]] = {}
    for entry in entries:
        lines = entry.splitlines()
        if "objectclass: groupofnames" in (line.lower() for line in lines):
            dn = next(line[4:] for line in lines if line.startswith("dn: "))
            for line in lines:
                if line.startswith("member: "):
                    parents.setdefault(_dn(line[8:]), []).append(dn)
    out = []
    for entry in entries:
        dn = next((line[4:] for line in entry.splitlines() if line.startswith("dn: ")), "")
        extra = "".join(f"\nmemberOf: {g}" for g in parents.get(_dn(dn), []))
        out.append(entry.rstrip("\n") + extra)
    return "\n\n".join(out) + "\n"


def start_slapd(directory: Path, ldif: str, *, suffix: str = SUFFIX,
                cert_names: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1"), member_of: bool = True,
                tls: bool = True) -> Slapd:
    """Load `ldif` offline (slapadd -q) into a fresh database under `directory` and serve it.

    `tls=False`: no certificate at all (StartTLS is refused) and no ldaps:// listener.
    """
    (directory / "db").mkdir(parents=True)
    tls_dir = directory / "tls"
    ca = self_signed(tls_dir, "localhost", cert_names)
    conf = directory / "slapd.conf"
    text = SLAPD_CONF.format(d=directory, tls=tls_dir, suffix=suffix, limited=LIMITED_DN)
    if not tls:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("TLSCertificate")) + "\n"
    conf.write_text(text)
    (directory / "data.ldif").write_text(with_member_of(ldif) if member_of else ldif)
    subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(directory / "data.ldif")],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    port, ldaps_port = free_port(), free_port()
    log = directory / "slapd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(conf), "-h",
             f"ldap://127.0.0.1:{port}/" + (f" ldaps://127.0.0.1:{ldaps_port}/" if tls else "")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    wait_port(port, proc, log, 10)
    if tls:
        wait_port(ldaps_port, proc, log, 10)
    return Slapd(port=port, ldaps_port=ldaps_port, ca_file=str(ca), directory=directory, proc=proc, base=suffix)


def require_slapd() -> None:
    if not (os.path.exists(SLAPD) and os.path.exists(SLAPADD)):
        pytest.skip("slapd not installed: run `bash scripts/system-deps.sh` (apt-get install slapd ldap-utils)")


@pytest.fixture(scope="session", name="slapd")
def slapd_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The shared OpenLDAP server: tests/data/ldap/directory.ldif plus the generated bulk entries."""
    require_slapd()
    ldif = (DATA / "directory.ldif").read_text() + "\n" + bulk_ldif()
    server = start_slapd(tmp_path_factory.mktemp("slapd"), ldif)
    yield server
    server.stop()


@pytest.fixture(name="private_slapd")
def private_slapd_fixture(tmp_path: Path) -> Iterator[Slapd]:
    """A small slapd of one's own, for tests that pause or stop the server."""
    require_slapd()
    server = start_slapd(tmp_path / "slapd", (DATA / "directory.ldif").read_text())
    yield server
    server.stop()


# ------------------------------------------------------------------------------------ Samba AD DC

AD_REALM = "EXAMPLE.TEST"
AD_BASE = "DC=example,DC=test"
AD_ADMIN = "Administrator@example.test"
AD_PASSWORD = "Passw0rd!Test-Only"  # must meet AD's complexity rules
AD_OU = f"OU=reconcile,{AD_BASE}"
AD_BIG_GROUP_SIZE = 1600  # above AD's 1,500-value range step
# The seeded DC is cached here between runs (root only); its lock also serialises DCs: the LDAP ports
# are fixed, so one DC per machine.
AD_CACHE = Path(os.environ.get("RECONCILE_AD_CACHE", "/var/tmp/reconcile-samba-ad"))


@dataclass
class SambaAd:
    """A running Samba AD DC on 127.0.0.1:389/636, seeded by `seed_ad`."""

    ca_file: str
    directory: Path
    proc: subprocess.Popen[bytes]
    provision_seconds: float = 0.0  # when the cached template was built
    seed_seconds: float = 0.0  # idem
    start_seconds: float = 0.0
    host: str = "127.0.0.1"
    base: str = AD_BASE
    ou: str = AD_OU

    url = "ldap://127.0.0.1:389"
    ldaps_url = "ldaps://127.0.0.1:636"

    def stop(self) -> None:
        _stop_group(self.proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop samba and every process it forked (its own session): no child may keep 389/636 open."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _port_busy(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _provision(directory: Path) -> None:
    """A loopback-only AD DC in `directory` (no DNS, no file services; ldb without fsync).

    Only the LDAP service runs: the tests bind simply over ldap:// and ldaps://. The RPC service would
    listen on ports from 49152 up, in Linux's ephemeral range, where another test's server or client
    socket may already sit (a CI run failed so: NT_STATUS_ADDRESS_ALREADY_ASSOCIATED on 49154).
    """
    tls = directory / "tls"
    for sub in ("run", "log", "tls"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    provision = subprocess.run(
        ["samba-tool", "domain", "provision", "--server-role=dc", "--dns-backend=NONE",
         f"--realm={AD_REALM}", "--domain=EXAMPLE", "--host-name=dc1", f"--adminpass={AD_PASSWORD}",
         f"--targetdir={directory}", "--option=interfaces=lo", "--option=bind interfaces only=yes",
         "--option=server services=ldap", "--option=ldb:nosync=true", "--option=tls enabled=yes",
         f"--option=tls keyfile={tls}/key.pem", f"--option=tls certfile={tls}/cert.pem", "--option=tls cafile=",
         f"--option=pid directory={directory}/run", f"--option=log file={directory}/log/log.%m"],
        capture_output=True, stdin=subprocess.DEVNULL, check=False,
    )
    if provision.returncode != 0:
        raise RuntimeError(
            f"samba-tool domain provision failed:\n{provision.stdout[-2000:]!r}\n{provision.stderr[-2000:]!r}")


def start_samba_ad(directory: Path) -> SambaAd:
    """Run the provisioned DC in `directory` in the foreground (stdin /dev/null), with a fresh certificate."""
    started = time.monotonic()
    ca = self_signed(directory / "tls", "dc1.example.test", ("DNS:localhost", "DNS:dc1.example.test", "IP:127.0.0.1"))
    log = directory / "samba.log"
    with log.open("wb") as out:
        # -F --no-process-group: foreground and not interactive (with -i it quits when stdin closes).
        # Simple binds over plain ldap:// are allowed so that the ldap:// path can be tested too.
        proc = subprocess.Popen(
            [SAMBA, "-s", str(directory / "etc" / "smb.conf"), "-F", "--no-process-group", "--debug-stdout",
             "--option=ldap server require strong auth=no"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_port(636, proc, log, 60)
        wait_port(389, proc, log, 60)
    except RuntimeError:
        _stop_group(proc)  # a failed start must not leave a forked listener behind
        raise
    return SambaAd(ca_file=str(ca), directory=directory, proc=proc, start_seconds=time.monotonic() - started)


def _template_key() -> str:
    """Changes with the provisioning, the seed or the Samba version: the cached directory is then rebuilt."""
    version = subprocess.run([SAMBA, "--version"], capture_output=True, text=True, check=False).stdout
    code = "".join(inspect.getsource(f) for f in (_provision, seed_ad, _ad_user))
    settings = repr((AD_REALM, AD_BASE, AD_ADMIN, AD_PASSWORD, AD_OU, AD_BIG_GROUP_SIZE))
    return hashlib.sha256((code + settings + version).encode()).hexdigest()[:16]


def samba_template() -> tuple[Path, dict[str, float]]:
    """A provisioned and seeded DC directory, built once per machine (AD_CACHE) and copied per session.

    Provisioning and seeding cost tens of seconds; starting a copy costs about two.
    """
    final = AD_CACHE / f"template-{_template_key()}"
    if not (final / "timings.json").exists():
        build = AD_CACHE / "build"
        shutil.rmtree(build, ignore_errors=True)
        started = time.monotonic()
        _provision(build)
        provisioned = time.monotonic()
        server = start_samba_ad(build)
        try:
            seeded_from = time.monotonic()
            seed_ad(server)
            seeded = time.monotonic() - seeded_from
        finally:
            server.stop()
        timings = {"provision_seconds": provisioned - started, "seed_seconds": seeded}
        (build / "origin").write_text(str(build))
        (build / "timings.json").write_text(json.dumps(timings))
        for old in AD_CACHE.glob("template-*"):
            shutil.rmtree(old, ignore_errors=True)
        build.rename(final)
    return final, json.loads((final / "timings.json").read_text())


def _sockets(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if stat.S_ISSOCK(os.lstat(os.path.join(folder, n)).st_mode)}


def copy_template(template: Path, directory: Path) -> None:
    shutil.copytree(template, directory, symlinks=True, ignore=_sockets)
    origin = (template / "origin").read_text()
    conf = directory / "etc" / "smb.conf"
    conf.write_text(conf.read_text().replace(origin, str(directory)))
    for stale in (directory / "run").glob("*"):
        stale.unlink()


@pytest.fixture(scope="module", name="samba_ad")  # module: the DC (and its lock) go as soon as its tests end
def samba_ad_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAd]:
    """A seeded Samba AD DC (see seed_ad). Needs root; skipped otherwise.

    Import it into one test module only: each importing module gets its own instance, and a second DC
    in the same process would wait forever for the first one's lock.
    """
    if os.geteuid() != 0:  # the one reason to skip: as root, a missing or blocked DC is a failure
        pytest.skip("the Samba AD DC tests need root (provisioning chowns sysvol; LDAP is fixed to port 389)")
    if not shutil.which("samba-tool") or not os.path.exists(SAMBA):
        pytest.fail("Samba AD DC not installed: run `bash scripts/system-deps.sh` (make test does)")
    AD_CACHE.mkdir(parents=True, exist_ok=True)
    with (AD_CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another xdist worker's DC holds the fixed ports until it ends
        deadline = time.monotonic() + 60  # a DC that just stopped may still be closing its listeners
        while (_port_busy(389) or _port_busy(636)) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _port_busy(389) or _port_busy(636):
            pytest.fail("ports 389/636 are taken (a system LDAP server?): the Samba AD DC cannot start; stop it")
        template, timings = samba_template()
        directory = tmp_path_factory.mktemp("samba-ad") / "dc"
        copy_template(template, directory)
        server = start_samba_ad(directory)
        server.provision_seconds = timings["provision_seconds"]
        server.seed_seconds = timings["seed_seconds"]
        logging.getLogger(__name__).info(
            "Samba AD DC: template %s (provisioned in %.1f s, seeded in %.1f s), started in %.1f s",
            template.name, server.provision_seconds, server.seed_seconds, server.start_seconds)
        try:
            yield server
        finally:
            server.stop()


def _ad_user(dn: str, sam: str, *, mail: str | None, name: str,
             disabled: bool = False) -> tuple[str, dict[str, object]]:
    # 512 NORMAL_ACCOUNT | 32 PASSWD_NOTREQD: enabled without a password (setting one costs an LDAPS
    # round trip and a hash per user); | 2 ACCOUNTDISABLE for the disabled one.
    # no userPrincipalName: Samba checks its uniqueness with an unindexed search, so every add costs
    # more than the one before
    attrs: dict[str, object] = {"sAMAccountName": sam, "displayName": name,
                                "userAccountControl": 512 | 32 | (2 if disabled else 0)}
    if mail:
        attrs["mail"] = mail
    return dn, attrs


def seed_ad(server: SambaAd) -> None:
    """Users (one disabled), nested groups with a cycle, a hostile group name, a 1,600-member group."""
    import ssl

    from ldap3 import ASYNC, Connection, Server, Tls

    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=server.ca_file)
    conn = Connection(Server("127.0.0.1", port=636, use_ssl=True, tls=tls), AD_ADMIN, AD_PASSWORD,
                      auto_bind=True, raise_exceptions=True)
    ou, people, groups, bulk = AD_OU, f"OU=people,{AD_OU}", f"OU=groups,{AD_OU}", f"OU=bulk,{AD_OU}"
    for dn in (ou, people, groups, bulk):
        conn.add(dn, ["top", "organizationalUnit"])
    named = [
        ("alice", "alice@example.test", "Alice Archer", False),
        ("bob", "Bob.Baker@Example.test", "Bob Baker", False),
        ("carol", "carol@example.test", "Carol Cooper", False),
        ("dave", "dave@example.test", "Dave Dyer", False),
        ("erin", "erin@example.test", "Erin Evans", False),
        ("mallory", "mallory@example.test", "Mallory Moss", True),
        ("grace", None, "Grace Green", False),
    ]
    dn_of: dict[str, str] = {}
    for sam, mail, name, disabled in named:
        dn, attrs = _ad_user(f"CN={name},{people}", sam, mail=mail, name=name, disabled=disabled)
        conn.add(dn, ["top", "person", "organizationalPerson", "user"], attrs)
        dn_of[sam] = dn
    # bulk users pipelined (ASYNC: send all, then check every answer): twice as fast as one by one
    pipe = Connection(Server("127.0.0.1", port=636, use_ssl=True, tls=tls), AD_ADMIN, AD_PASSWORD,
                      client_strategy=ASYNC, auto_bind=True, raise_exceptions=True)
    bulk_dns, pending = [], []
    for i in range(AD_BIG_GROUP_SIZE):
        dn, attrs = _ad_user(f"CN=b{i:05d},{bulk}", f"b{i:05d}", mail=f"b{i:05d}@bulk.example.test", name=f"Bulk {i}")
        pending.append(pipe.add(dn, ["top", "person", "organizationalPerson", "user"], attrs))
        bulk_dns.append(dn)
    for message_id in pending:
        _, result = pipe.get_response(message_id)
        if result["result"] != 0:
            raise RuntimeError(f"seeding the AD failed: {result}")
    pipe.unbind()

    def group(cn: str, members: list[str], sam: str | None = None) -> str:
        dn = f"CN={cn},{groups}"
        conn.add(dn, ["top", "group"], {"sAMAccountName": sam or cn})
        if members:
            conn.modify(dn, {"member": [("MODIFY_ADD", members)]})
        return dn

    platform = group("eng-platform", [dn_of["alice"], dn_of["bob"]])
    docs = group("eng-docs", [dn_of["carol"], platform])
    group("staff", [docs, dn_of["dave"]])
    cyc_a = group("cyc-a", [dn_of["erin"]])
    cyc_b = group("cyc-b", [dn_of["mallory"], cyc_a])
    conn.modify(cyc_a, {"member": [("MODIFY_ADD", [cyc_b])]})
    group("evil*)(cn=*", [dn_of["grace"]], sam="evil-group")
    group("hr", [dn_of["grace"]])
    group("big", bulk_dns)
    conn.unbind()
