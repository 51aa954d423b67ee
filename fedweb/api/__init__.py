"""Site-wide REST API pieces: token authentication, the error format, the schema."""
