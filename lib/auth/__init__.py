"""Who may call: the worker's shared secrets and admin sessions."""
