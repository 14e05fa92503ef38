"""``python -m argen.compare [EXP ...]``: the experiments against their baseline (:mod:`argen.experiments.compare`)."""

from argen.experiments.compare import main

if __name__ == "__main__":
    main()
