"""The Prefect-free core of the manifest pipeline: rows in, row outcomes and results out."""
