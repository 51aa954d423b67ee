"""Settings package: ``base`` for running sites, ``test`` for the test suite."""
