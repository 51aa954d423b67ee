"""The browser UI: templates, vendored static files, shell pages."""
