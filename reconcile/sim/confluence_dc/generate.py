"""A deterministic generator of large simulated Confluence DC worlds (`reconcile sim --users 100000`).

Same (users, groups, memberships, seed) -> the same world, byte for byte. The admin account is
`admin` with the personal access token `sim-admin-token` and the password `admin`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from reconcile.sim.confluence_dc.facts import DcSpace
from reconcile.sim.confluence_dc.world import INTERNAL_DIRECTORY, DcUser, DcWorld, Directory

ADMIN_TOKEN = "sim-admin-token"  # a simulator credential, documented in --help
ADMIN_PASSWORD = "admin"
LDAP_DIRECTORY = "Corporate LDAP"
ADMIN_GROUP = "confluence-administrators"
USERS_GROUP = "confluence-users"


EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def generate_dc(users: int, groups: int, memberships: int, seed: int = 1, *,
                version: tuple[int, int] = (9, 4), epoch: datetime = EPOCH) -> DcWorld:
    """A world of `users` users (+0.5 % unsynced entries), `groups` groups and ~`memberships` memberships.

    Users: `admin` (internal, administrator) then `user000001`...; 40 % live in the read-only
    directory "Corporate LDAP", 3 % are disabled. Groups: confluence-administrators,
    confluence-users (a quarter of the memberships), then `team-NNNN` (internal) and every tenth
    one `ldap-NNNN` (read-only directory). Unsynced entries come in pairs sharing a username.
    Last logins lie up to 700 days before `epoch` (never the wall clock); 10 % never logged in.
    Spaces: a personal space `~userNNNNNN` for every 50th user, a global space `SPNNNN` per 20 users
    with one or two direct admins; page counts per creator. The licence is not modelled (every active user counts).
    """
    if users < 1 or groups < 2 or memberships < 1:
        raise ValueError("a generated world needs at least 1 user, 2 groups and 1 membership")
    rng = random.Random(seed)
    world = DcWorld(version=version, directories=[Directory(INTERNAL_DIRECTORY), Directory(LDAP_DIRECTORY, True)])
    logins = [(epoch - timedelta(minutes=m)).isoformat(timespec="milliseconds")
              for m in range(0, 60 * 24 * 700, 60 * 24 * 700 // 4096)]
    roll = rng.random
    keys: list[str] = []
    for i in range(users):
        if i == 0:
            user = DcUser(key=f"{seed:08x}{0:024x}", username="admin", display_name="Site Administrator",
                          email="admin@example.com", password=ADMIN_PASSWORD,
                          last_login=epoch.isoformat(timespec="milliseconds"))
        else:
            ldap = roll() < 0.4
            login = logins[int(roll() * len(logins))]
            user = DcUser(
                key=f"{seed:08x}{i:024x}",
                username=f"user{i:06d}",
                display_name=f"User {i:06d}",
                email=f"user{i:06d}@example.com",
                active=roll() >= 0.03,
                directory=LDAP_DIRECTORY if ldap else INTERNAL_DIRECTORY,
                last_login=login if roll() < 0.9 else None,
            )
        world.users[user.key] = user
        world.by_username[user.username] = user.key
        keys.append(user.key)
    world.tokens[ADMIN_TOKEN] = keys[0]
    for j in range(max(1, users // 200)):
        shared = f"gone{j // 2:05d}"  # two entries per username
        key = f"{seed:08x}f{j:023x}"
        world.users[key] = DcUser(key=key, username=shared, display_name=f"Gone {j // 2:05d}", active=False,
                                  directory=LDAP_DIRECTORY, unsynced=True)
        world.unsynced_by_username.setdefault(shared, []).append(key)
    world.add_group(ADMIN_GROUP)
    world.add_group(USERS_GROUP)
    names = []
    for j in range(groups - 2):
        if j % 10 == 9:
            names.append(world.add_group(f"ldap-{j:04d}", LDAP_DIRECTORY).name)
        else:
            names.append(world.add_group(f"team-{j:04d}").name)
    # Memberships go straight into the dictionaries (add_member per pair is 3x slower at 400,000).
    groups_of: dict[str, dict[str, None]] = {key: {} for key in keys}
    world.groups_of = groups_of
    world.members[ADMIN_GROUP][keys[0]] = None
    groups_of[keys[0]][ADMIN_GROUP] = None
    left = memberships - 1
    everyone = min(users, left // 4) if names else min(users, left)
    users_group = world.members[USERS_GROUP]
    for key in keys[:everyone]:
        users_group[key] = None
        groups_of[key][USERS_GROUP] = None
    left -= everyone
    if names:
        left = min(left, len(names) * users)
        member_sets = [world.members[name] for name in names]
        n_names = len(names)
        while left > 0:  # the hot loop of a 400,000-membership start: locals only
            g = int(roll() * n_names)
            key = keys[int(roll() * users)]
            members = member_sets[g]
            if key not in members:
                members[key] = None
                groups_of[key][names[g]] = None
                left -= 1
    world.invalidate()
    _spaces(world, keys, random.Random(seed * 7919 + 2))  # its own stream: users and groups stay as they were
    return world


def _spaces(world: DcWorld, keys: list[str], rng: random.Random) -> None:
    for i in range(50, len(keys), 50):
        key = f"~user{i:06d}"
        world.spaces[key] = DcSpace(key=key, name=f"User {i:06d}", type="personal", id=100_000 + i,
                                    creator=keys[i], admins=[keys[i]], content={keys[i]: rng.randrange(0, 40)})
    for j in range(len(keys) // 20):
        key = f"SP{j:04d}"
        admins = sorted({keys[rng.randrange(len(keys))] for _ in range(1 + (rng.random() < 0.5))})
        writers = {keys[rng.randrange(len(keys))]: rng.randrange(1, 300) for _ in range(rng.randrange(1, 6))}
        world.spaces[key] = DcSpace(key=key, name=f"Space {j:04d}", type="global", id=10_000 + j, creator=admins[0],
                                    admins=admins, admin_groups=[ADMIN_GROUP], content=writers)
