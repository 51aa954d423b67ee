"""Partners, projects, cooperation tokens and table authorisation (built with the between-sites work)."""
