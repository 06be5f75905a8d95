"""The split encoder, its layer runners and its scoring heads."""
