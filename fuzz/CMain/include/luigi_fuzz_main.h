// Intentionally empty: the C entry point has nothing to export to Swift.
