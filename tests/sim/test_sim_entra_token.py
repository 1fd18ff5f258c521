"""The simulator's Entra ID token endpoint: client credentials by secret and by certificate assertion (good,
expired, wrong key, unregistered certificate, wrong audience), its error format, and secrets kept out of the
request log."""

from __future__ import annotations

import json

import pytest

from tests.support.entra import ASSERTION_TYPE, CLIENT, SCOPE, SECRET, TENANT, Entra, Keys, assertion

pytestmark = pytest.mark.anyio


async def test_client_secret_good_and_bad(entra: Entra) -> None:
    good = await entra.token(client_secret=SECRET)
    assert good.status_code == 200 and good.headers["cache-control"] == "no-store, no-cache"
    body = good.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"]
    bad = await entra.token(client_secret="wrong")
    assert bad.status_code == 401
    error = bad.json()
    assert error["error"] == "invalid_client" and error["error_codes"] == [7000215]
    assert error["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(error)
    assert "wrong" not in bad.text
    unknown = await entra.token("bbbbbbbb-0000-4000-8000-000000000009", client_secret=SECRET)
    assert unknown.status_code == 400 and unknown.json()["error"] == "unauthorized_client"
    scope = await entra.token(client_secret=SECRET, scope="User.Read.All")
    assert scope.status_code == 400 and scope.json()["error_codes"] == [1002012]
    tenant = await entra.client.post("/nosuch.onmicrosoft.com/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": SCOPE})
    assert tenant.status_code == 400 and tenant.json()["error_codes"] == [90002]


@pytest.mark.parametrize("sha256", [True, False], ids=["x5t#S256-PS256", "x5t-RS256"])
async def test_certificate_assertion_good(entra: Entra, keys: Keys, sha256: bool) -> None:
    response = await entra.token(client_assertion_type=ASSERTION_TYPE,
                                 client_assertion=assertion(keys, sha256=sha256))
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
    users = await entra.client.get("/v1.0/users", headers=bearer)
    assert users.status_code == 200
    # the real service's audience (login.microsoftonline.com) is accepted too
    real_aud = assertion(keys, aud=f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    assert (await entra.token(client_assertion_type=ASSERTION_TYPE, client_assertion=real_aud)).status_code == 200


@pytest.mark.parametrize(("case", "code"), [
    ("expired", 700024), ("wrong_key", 700027), ("unregistered_cert", 700027), ("wrong_aud", 700212),
])
async def test_certificate_assertion_refused(entra: Entra, keys: Keys, case: str, code: int) -> None:
    made = {
        "expired": lambda: assertion(keys, exp_in=-3600),
        "wrong_key": lambda: assertion(keys, key=keys.other_key),  # names the registered cert, other key signed
        "unregistered_cert": lambda: assertion(keys, key=keys.other_key, cert=keys.other_cert),
        "wrong_aud": lambda: assertion(keys, aud="https://login.microsoftonline.com/other/oauth2/v2.0/token"),
    }[case]()
    response = await entra.token(client_assertion_type=ASSERTION_TYPE, client_assertion=made)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client" and response.json()["error_codes"] == [code]


async def test_secrets_never_reach_the_request_log(entra: Entra, keys: Keys) -> None:
    await entra.token(client_secret=SECRET)
    await entra.token(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(keys))
    logged = json.dumps([e.to_json() if hasattr(e, "to_json") else str(e) for e in entra.app.state.ctx.log.entries])
    assert SECRET not in logged and "eyJ" not in logged and "client_secret" in logged

