"""Revisions, adoption of KITT's databases (schemas 1..11), the reference schema."""
