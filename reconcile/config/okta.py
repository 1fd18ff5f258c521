"""The `type: okta` source record: its keys, checks and schema, built into `OktaSourceSettings`."""

from __future__ import annotations

from reconcile.config.format import (
    REMOTE_HTTP,
    SOURCE_HTTP_FIX,
    _no_slash,
    _secret,
    glob,
    globs,
    group_name,
    insecure,
    secret_pair,
    url,
)
from reconcile.config.into import Into
from reconcile.config.nodes import ListOf, MapOf
from reconcile.config.records import Insecure, Record
from reconcile.config.references import FilePath
from reconcile.config.scalars import Boolean, Choice, Integer, Number, Text
from reconcile.model import norm
from reconcile.settings import HttpSettings
from reconcile.sources.okta.settings import (
    READ_SCOPES,
    Desired,
    OktaGroupsSettings,
    OktaKey,
    OktaSourceSettings,
    OktaStatusMap,
    OktaUsersSettings,
)

EXPRESSION = r"^\S(?:.*\S)?$"
NOT_AN_EXPRESSION = "'{value}' is not an Okta expression (empty, or leading/trailing spaces)"
DESIRED = [str(d) for d in Desired]


def _expression(doc: str) -> Text:
    return Text(EXPRESSION, NOT_AN_EXPRESSION, doc=doc)


def _status() -> Record:
    defaults = OktaStatusMap()
    return Record(
        {name: Choice(DESIRED, doc=f"Okta status {name.upper()}", default=str(getattr(defaults, name)))
         for name in OktaStatusMap.__dataclass_fields__},
        doc="what each Okta status makes of a user: active, disabled, or absent (not a desired user)",
        into=Into(OktaStatusMap),
    )


AUTH = Record(
    {**secret_pair("token", "Okta API token (sent as SSWS)"),
     "client_id": Text(expand=True, doc="OAuth service app client id (private_key_jwt)"),
     **secret_pair("private_key", "the service app's private key (PEM)"),
     "key_id": Text(expand=True, doc="the key's id (kid) registered on the service app"),
     "scopes": ListOf(Text(r"^okta\.[a-zA-Z.]+$", "'{value}' is not an Okta scope (okta.users.read)"),
                      doc="scopes requested (OAuth)", default=list(READ_SCOPES))},
    choices=[["token"], ["token_file"], ["client_id", "private_key"], ["client_id", "private_key_file"]],
    choices_message="give exactly one of: token, token_file, client_id + private_key, "
    "client_id + private_key_file",
    dependent={"key_id": ["client_id"], "scopes": ["client_id"]},
)

HTTP = Record(
    {"timeout": Number(above=0, doc="seconds, connect and read", default=30.0),
     "max_retries": Integer(minimum=0, doc="retries of a failed request (429s wait for the reset)", default=4),
     "ca_file": FilePath(doc="PEM bundle to verify the server with (default: system store)")},
    doc="HTTP client settings (how many requests run at once: `concurrency`)",
    into=Into(HttpSettings, fixed=("verify_tls", "concurrency")),
)

OKTA = Record(
    {
        "url": url("the Okta org URL, e.g. https://acme.okta.com"),
        "auth": AUTH,
        "users": Record(
            {"search": _expression("Okta `search` expression selecting the users (any profile attribute)"),
             "filter": _expression("Okta `filter` expression (status, id, profile.login/email/firstName/"
                                   "lastName, eq only)"),
             "status": _status()},
            choices=[[], ["search"], ["filter"]],
            choices_message="give at most one of: search, filter",
            doc="which Okta users are desired users (default: all, by status)",
            into=Into(OktaUsersSettings),
        ),
        "groups": Record(
            {"include": globs("Okta group names or globs to read ('*': all)", ["*"]),
             "search": _expression("Okta `search` expression narrowing the groups, e.g. type eq \"OKTA_GROUP\""),
             "q": Text(doc="Okta `q`: a group name prefix (not paged by Okta; at most 300 groups)"),
             "map": MapOf(glob(), group_name(),
                          doc="Okta group glob -> target group; unmapped groups are ignored (no map: every "
                          "included group under its own name, lower-cased)")},
            choices=[[], ["search"], ["q"]],
            choices_message="give at most one of: search, q",
            doc="which Okta groups give memberships (none without this section)",
            into=Into(OktaGroupsSettings, convert={"map": lambda pairs: tuple((k, norm(v)) for k, v in pairs)}),
        ),
        "key": Choice([str(k) for k in OktaKey], doc="the identity key that matches the target's users",
                      default=str(OktaKey.EMAIL)),
        "concurrency": Integer(minimum=1, doc="requests in flight (group member reads run in parallel); "
                               "Okta's concurrency limit is shared by the whole org", default=4),
        "http": HTTP,
        "insecure": insecure("an http:// url to another host (the token travels in clear)"),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["url", "auth"],
    insecure=[Insecure(("url",), REMOTE_HTTP, SOURCE_HTTP_FIX)],
    doc="an Okta org (Management API), read only",
    into=Into(OktaSourceSettings,
              keys={"token": _secret("token"), "client_id": ("auth.client_id",),
                    "private_key": _secret("private_key"), "key_id": ("auth.key_id",), "scopes": ("auth.scopes",)},
              convert={"url": _no_slash}, given=("name", "origin")),
)
