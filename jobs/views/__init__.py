"""Browser pages for jobs: lists (``lists``), and one job's pages, forms and actions (``pages``)."""
