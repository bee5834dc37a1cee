"""A stand-in for a user's package that extends ddescent through entry points, without touching it."""
