"""The synthetic demo dataset (DFEW's on-disk layout, drawn from a known face model) and the demo-only oracle
control: clips of the same renderer, what a perfect generator would add."""
