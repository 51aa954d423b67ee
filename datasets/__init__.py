"""Datasets: upload, validation, storage, grants."""
