"""A user's account: funds and margin, positions, broker accounts, watchlists, administration."""
