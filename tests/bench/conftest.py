"""Fixtures for the tests in tests/bench/."""
