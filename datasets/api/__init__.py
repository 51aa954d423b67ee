"""REST API for datasets and grants."""
