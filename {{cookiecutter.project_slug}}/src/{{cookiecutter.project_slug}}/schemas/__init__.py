"""Pydantic models for what crosses the API boundary; never the ORM classes themselves."""
