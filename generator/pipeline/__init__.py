"""Building and checking specs: the build and its cache, isolated children, runs of real torch."""
