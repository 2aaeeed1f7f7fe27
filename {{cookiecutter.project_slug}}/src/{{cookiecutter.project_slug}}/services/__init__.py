"""Use cases. Services raise `core.errors` exceptions and know nothing of HTTP."""
