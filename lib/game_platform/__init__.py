"""The Game Platform (MetaCTF's SynEd integration API): client, models and domain SQL.

- `client`: the HTTP client (httpx): auth, timeouts, retries, typed results.
- `models`: pydantic models written from the vendor's OpenAPI schemas.
- `errors`: what can go wrong talking to the vendor, and `RemoteMissing`.
- `store`: the only Python that knows the domain tables' SQL.
- `fetching`: bounded-concurrency fetches consumed in order, and the time budget.

Nothing here is imported by the worker's cold start: the registry imports the
job handlers (and through them httpx) only when a Game Platform job runs.
"""
