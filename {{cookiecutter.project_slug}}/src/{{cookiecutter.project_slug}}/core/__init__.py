"""Framework-free building blocks: configuration, logging, errors, security.

Everything above may import from here; nothing here imports from above.
"""
