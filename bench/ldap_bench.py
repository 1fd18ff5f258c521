"""LDAP source benchmark: `LdapSource.read()` of a generated slapd directory (users, groups, members).

`run()` starts a throwaway slapd (tests/support/ldap_servers.py, loaded with `slapadd -q`), reads it in a
child process (so peak RSS is the reader's alone) and returns the numbers; not part of `make test`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.runner import process_cpu
from tests.support import ldap_servers as servers

ROOT = Path(__file__).resolve().parents[1]
MEMBERSHIPS_PER_USER = 4

READER = """
import hashlib, json, resource, sys, time
from reconcile.settings import LdapGroupsSettings, LdapSourceSettings, LdapUsersSettings, Secret
from reconcile.aio import run
from reconcile.sources.ldap import LdapSource
a = json.loads(sys.argv[1])
config = LdapSourceSettings(
    name="bench", url=a["url"], start_tls=True, ca_file=a["ca_file"], timeout=60, page_size=a["page_size"],
    bind_dn=a["bind_dn"], bind_password=Secret(a["password"], "${LDAP_PASSWORD}"),
    users=LdapUsersSettings(base=a["users_base"]),
    groups=LdapGroupsSettings(base=a["groups_base"], map=(("g*", "team-*"),)))
def peak_kb():
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (kept across fork + exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = peak_kb()
started, cpu = time.perf_counter(), time.process_time()
state = run(LdapSource(config).read())  # not asyncio.run: it would repr() the result (reconcile/aio.py)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
after = peak_kb()
digest = hashlib.sha256()  # of the whole desired state (less slapd's port): an optimisation must not change it
for key in sorted(state.users):
    u = state.users[key]
    origin = str(u.origin).replace(a["url"], "URL")
    fields = (key, u.status, sorted(u.groups), u.identity, u.display_name, u.source, origin, u.fact)
    digest.update(repr(fields).encode())
digest.update(repr((sorted(state.groups), sorted(state.origins.items()), state.guarded, state.notes)).encode())
print(json.dumps({"digest": digest.hexdigest(), "seconds": seconds, "cpu_seconds": cpu, "users": len(state.users),
                  "groups": len(state.groups),
                  "memberships": sum(len(u.groups) for u in state.users.values()),
                  "rss_before_kb": before, "rss_after_kb": after}))
"""


def generate_ldif(users: int, groups: int, suffix: str) -> str:
    """ou=benchpeople with `users` people; ou=benchgroups with `groups` groups, 4 memberships per user."""
    out = [f"dn: ou=benchpeople,{suffix}\nobjectClass: organizationalUnit\nou: benchpeople\n",
           f"dn: ou=benchgroups,{suffix}\nobjectClass: organizationalUnit\nou: benchgroups\n"]
    members: list[list[str]] = [[] for _ in range(groups)]
    step = max(1, groups // MEMBERSHIPS_PER_USER)
    for i in range(users):
        dn = f"uid=p{i:06d},ou=benchpeople,{suffix}"
        out.append(f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: p{i:06d}\ncn: Person {i}\nsn: {i}\n"
                   f"mail: p{i:06d}@bench.example.org\n")
        for k in {(i + k * step) % groups for k in range(MEMBERSHIPS_PER_USER)}:
            members[k].append(dn)
    for g, dns in enumerate(members):
        out.append(f"dn: cn=g{g:05d},ou=benchgroups,{suffix}\nobjectClass: groupOfNames\ncn: g{g:05d}\n"
                   + "".join(f"member: {dn}\n" for dn in (dns or [f"ou=benchpeople,{suffix}"])))
    return "\n".join(out) + "\n"


def run(users: int = 100_000, groups: int = 2_000, page_size: int = 1000) -> dict[str, Any]:
    """Load the directory, read it once with LdapSource; wall seconds, users/s, peak RSS delta (MB)."""
    if not Path(servers.SLAPD).exists():
        raise RuntimeError("slapd is not installed: run `bash scripts/system-deps.sh`")
    with tempfile.TemporaryDirectory(prefix="reconcile-ldap-bench-") as tmp:
        started = time.perf_counter()
        ldif = (servers.DATA / "directory.ldif").read_text() + "\n" + generate_ldif(users, groups, servers.SUFFIX)
        server = servers.start_slapd(Path(tmp) / "slapd", ldif, member_of=False)
        load_seconds = time.perf_counter() - started
        try:
            args = {"url": server.url, "ca_file": server.ca_file, "bind_dn": servers.SERVICE_DN,
                    "password": servers.SERVICE_PASSWORD, "page_size": page_size,
                    "users_base": f"ou=benchpeople,{servers.SUFFIX}", "groups_base": f"ou=benchgroups,{servers.SUFFIX}"}
            server_cpu = process_cpu(server.proc.pid)
            child = subprocess.run([sys.executable, "-c", READER, json.dumps(args)], capture_output=True,
                                   text=True, cwd=str(ROOT), timeout=1800, check=False)
            server_cpu = process_cpu(server.proc.pid) - server_cpu
        finally:
            server.stop()
    if child.returncode != 0:
        raise RuntimeError(f"LDAP bench reader failed:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return {
        "name": "ldap source read (slapd, StartTLS, paged)",
        "users": result["users"],
        "groups": result["groups"],
        "memberships": result["memberships"],
        "digest": result["digest"],  # sha256 of the desired state read
        "load_seconds": round(load_seconds, 2),
        "wall_seconds": round(result["seconds"], 2),
        "cpu_seconds": round(result["cpu_seconds"], 2),  # the reader's own CPU: what load does not distort
        "server_cpu_seconds": round(server_cpu, 2),  # slapd's, every thread (/proc/<pid>/stat)
        "users_per_second": round(result["users"] / result["seconds"]),
        "peak_rss_delta_mb": round((result["rss_after_kb"] - result["rss_before_kb"]) / 1024, 1),
        "peak_rss_mb": round(result["rss_after_kb"] / 1024, 1),  # VmHWM of the reader alone
    }


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:3])), indent=2))
