"""Fixtures for the tests in tests/targets/."""
