"""End-to-end jobs built from the package parts: re-ranking a dataset, sweeps."""
