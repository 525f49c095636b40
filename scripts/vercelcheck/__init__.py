"""scripts/vercel_check.py's parts: build with Vercel's builder, serve through Vercel's bridge, the request matrix."""
