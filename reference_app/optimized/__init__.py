"""The optimized design: what the reviews recommended, done properly."""
