"""Studies: side-by-side comparisons and the named experiments, built on runs."""
