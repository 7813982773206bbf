"""karr_db's test suite: a package, so that ``tests.support`` imports one way everywhere."""
