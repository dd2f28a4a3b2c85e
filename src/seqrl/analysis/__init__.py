"""Model analyses that are not evaluation in an environment (long-horizon prediction)."""
