"""Tests without a database: documents, samples, the generated docs."""
