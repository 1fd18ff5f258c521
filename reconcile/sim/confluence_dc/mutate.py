"""`POST /_sim/mutate` for Confluence DC: one change to the world behind the tool's back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconcile.sim.confluence_dc.world import INTERNAL_DIRECTORY, DcUser, DcWorld, user_key


def _user(world: DcWorld, args: Mapping[str, Any]) -> DcUser:
    if "key" in args:
        return world.users[str(args["key"])]
    user = world.user_by_username(str(args["username"]))
    if user is None:
        raise KeyError(f"user {args['username']!r}")
    return user


def _group(world: DcWorld, args: Mapping[str, Any]) -> str:
    name = str(args["group"]).lower()
    if name not in world.groups:
        raise KeyError(f"group {name!r}")
    return name


def mutate_dc(world: DcWorld, op: str, args: Mapping[str, Any]) -> Any:
    """One change behind the tool's back; `args` names the user by `username` or `key`."""
    if op == "add_member":
        return world.add_member(_user(world, args).key, _group(world, args))
    if op == "remove_member":
        return world.remove_member(_user(world, args).key, _group(world, args))
    if op == "disable_user":
        world.set_active(_user(world, args).key, False)
        return None
    if op == "enable_user":
        world.set_active(_user(world, args).key, True)
        return None
    if op == "delete_user":
        world.remove_user(_user(world, args).key)
        return None
    if op == "unsync_user":
        world.make_unsynced(_user(world, args).key)
        return None
    if op == "add_user":
        username = str(args["username"]).lower()
        user = DcUser(
            key=str(args.get("key") or user_key(f"user:{username}")),
            username=username,
            display_name=str(args.get("display_name") or username),
            email=args.get("email"),
            active=args.get("status", "active") != "disabled",
            directory=str(args.get("directory", INTERNAL_DIRECTORY)),
        )
        return world.add_user(user).key
    if op == "login":  # `at`: an ISO-8601 time, always given (the simulator never reads the wall clock)
        user = _user(world, args)
        at = str(args["at"])
        datetime.fromisoformat(at.replace("Z", "+00:00"))  # ValueError: 400
        user.last_login = at
        world.invalidate()  # the active list is ordered by last login
        return None
    if op == "add_group":
        world.add_group(str(args["group"]), str(args.get("directory", INTERNAL_DIRECTORY)))
        return None
    if op == "remove_group":
        world.remove_group(str(args["group"]))
        return None
    raise ValueError(
        f"unknown op {op!r}: add_member, remove_member, disable_user, enable_user, delete_user, "
        "unsync_user, add_user, login, add_group, remove_group"
    )
