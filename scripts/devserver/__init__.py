"""The local dev server's parts: routes, cron, database, secrets, sandbox and seed (not deployed)."""
