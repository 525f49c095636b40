"""The Game Platform (MetaCTF's SynEd integration API) and the two jobs that use it.

- `payloads`: the task types and what may be asked of them (no httpx: the admin
  triggers and the CLI validate requests with these models).
- `client`: the HTTP client (httpx): auth, timeouts, retries, typed results.
- `models`: pydantic models written from the vendor's OpenAPI schemas.
- `errors`: what can go wrong talking to the vendor, and `RemoteMissing`.
- `fetching`: bounded-concurrency fetches consumed in order, and the time budget.
- `session`: one job's vendor session (client, threads, budget) and its walk-and-write.
- `store`: the only Python that knows the domain tables' SQL (`queries.sql`).
- `sync`, `sweep`: the `game_platform_sync` and `game_platform_totals_sweep` jobs.

Nothing here is imported by the worker's cold start: the registry imports the
job modules (and through them httpx) only when a Game Platform job runs.
"""
