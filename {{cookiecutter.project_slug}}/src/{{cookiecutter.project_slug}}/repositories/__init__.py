"""Queries, one repository per aggregate. Repositories add and flush; they never commit."""
