"""Local stand-ins for the services the bundle calls: the dev sandbox (never deployed).

`sandbox.game_platform` is a fake Game Platform (MetaCTF's SynEd integration
API) served over real HTTP. The dev server (`scripts/dev.py`, through
`scripts/devserver/sandbox.py`), the Vercel check, the sync benchmark and the
tests all use it; it lives here, not under `tests/`, so that nothing outside
`tests/` imports `tests`. It imports the standard library and
`scripts.local_http` only, never `lib` (it is the vendor, not the bundle), and
`.vercelignore` and vercel.json's `excludeFiles` keep it out of every function bundle.
"""
