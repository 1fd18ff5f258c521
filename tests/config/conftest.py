"""Fixtures for the tests in tests/config/."""
