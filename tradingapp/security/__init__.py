"""Who may do what: JWT issuing and checks (auth), password hashing (passwords) and the encryption
of stored broker secrets (crypto)."""
