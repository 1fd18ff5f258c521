"""Fixtures for the tests in tests/cli/."""
