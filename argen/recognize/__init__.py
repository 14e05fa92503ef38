"""Recognition: DFER baselines on the original and augmented training split, and their metrics."""
