"""Shared factories and helpers of the test suite. Test modules and conftests import from here, never from
one another (tests/test_architecture.py checks it)."""
