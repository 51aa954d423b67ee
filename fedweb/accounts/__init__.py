"""Users, roles, login throttling."""
