"""Analysis of runs as pandas frames: which runs make a suite (``frames``), statistics (``stats``: intervals, paired
tests, ranks, time to target) and the textbook claims (``claims``). It takes DataFrames and imports no harness,
executor or store."""
