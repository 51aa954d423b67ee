"""REST API for partners, projects and project tables."""
