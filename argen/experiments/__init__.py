"""Experiment tooling around the pipeline (not a DVC stage): the paper's ablations (tables 3-5) and the
recognition evidence run, both queued as ``dvc exp run --queue`` experiments and tabulated afterwards."""
