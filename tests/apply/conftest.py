"""Fixtures for the tests in tests/apply/."""
