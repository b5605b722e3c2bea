"""Features computed from the store: LOB features, labels, alpha expressions, IC."""
