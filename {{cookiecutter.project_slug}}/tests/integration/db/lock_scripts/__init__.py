"""A migration history used only by the migration-lock tests.

Every revision writes an audit row (revision, backend pid, application name, start and end times,
the session's timeouts), can be made slow or made to give up the lock through `lock_test_config`,
and names its objects after the version table, so two histories can share one database.
"""
