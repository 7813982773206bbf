"""Repositories: take a session, never commit, return frozen Pydantic DTOs."""
