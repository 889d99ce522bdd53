"""Helpers for the tests that are not tests themselves."""
