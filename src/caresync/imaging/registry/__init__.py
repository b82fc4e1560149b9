"""The imaging model registry: versions with model cards, and which version serves each task."""
