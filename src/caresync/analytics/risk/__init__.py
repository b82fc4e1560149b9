"""Patient risk: features, a neural network and a random forest, their consensus, versioned models."""
