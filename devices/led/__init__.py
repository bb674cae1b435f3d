"""LED signboards: what a sign shows (content), how it looks (renderer, fonts) and how it gets there (drivers)."""
