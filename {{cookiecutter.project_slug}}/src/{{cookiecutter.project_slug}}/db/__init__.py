"""Database plumbing: engine, sessions, the unit of work and migrations."""
