"""A run from its configuration to its directory: the resolved configuration and its identity, matched
experiments, the data of a run, the runner, the run directory (files, lock, summary) and the results table."""
