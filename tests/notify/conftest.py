"""Fixtures for the tests in tests/notify/."""

from tests.support.notify import (
    certificate_fixture,  # noqa: F401 - the `certificate` fixture
    receiver_fixture,  # noqa: F401 - the `receiver` fixture
    smtp_fixture,  # noqa: F401 - the `smtp_starttls` fixture
)
