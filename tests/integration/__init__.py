"""Repositories and models on both dialects."""
