"""Fixtures for the tests in tests/core/."""
