"""Crash, load, connection-loss, hostile-input and security tests."""
