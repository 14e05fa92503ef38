"""Generation metrics: Fréchet distances (FVD with I3D weights, feature-space FDs without), diversity."""
