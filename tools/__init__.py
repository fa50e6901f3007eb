"""Developer tools for this repository (not installed with the bceweights package)."""
