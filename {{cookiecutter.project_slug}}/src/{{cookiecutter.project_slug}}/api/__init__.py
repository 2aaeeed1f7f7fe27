"""HTTP layer: routers, dependencies and the rendering of errors. Only this layer knows FastAPI."""
