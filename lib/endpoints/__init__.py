"""One module per endpoint family: request in, response out. The api/ files bind them to Vercel."""
