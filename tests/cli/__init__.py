"""The karr-db command line."""
