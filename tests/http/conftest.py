"""Fixtures for the tests in tests/http/."""
