"""Celery tasks. Tasks receive ids, never ORM objects, and run one unit of work each."""
