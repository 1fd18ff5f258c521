"""Fixtures for the tests in tests/sources/."""

from tests.support.entra import keys_fixture  # noqa: F401 - the `keys` fixture
from tests.support.ldap_servers import (
    private_slapd_fixture,  # noqa: F401 - the `private_slapd` fixture
    samba_ad_fixture,  # noqa: F401 - the `samba_ad` fixture
    slapd_fixture,  # noqa: F401 - the `slapd` fixture
)
from tests.support.scim_server import scim_server_fixture  # noqa: F401 - the `scim_server` fixture
