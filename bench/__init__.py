"""Benchmarks of karr_db against hand-written raw-driver SQL (``python -m bench``)."""
