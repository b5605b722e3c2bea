"""Helpers shared by tests, imported as ``tests.support.<module>`` (the repository root is on sys.path)."""
