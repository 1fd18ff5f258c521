"""Fixtures for the tests in tests/contract/."""
