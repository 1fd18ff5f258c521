"""Fixtures for the tests in tests/docs/."""
