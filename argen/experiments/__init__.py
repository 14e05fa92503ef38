"""Tools that run and compare DVC experiments: the comparison command (:mod:`argen.experiments.compare`)."""
