"""Clients of other services. Services call them; they know nothing of the web framework."""
