"""Revisions, adoption of the earlier system's databases, the reference schema."""
