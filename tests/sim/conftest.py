"""Fixtures for the tests in tests/sim/."""

from tests.support.entra import (
    entra_fixture,  # noqa: F401 - the `entra` fixture
    keys_fixture,  # noqa: F401 - the `keys` fixture
)
from tests.support.scim_server import scim_server_fixture  # noqa: F401 - the `scim_server` fixture
