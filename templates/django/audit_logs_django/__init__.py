"""Sends a Django app's audit events (model changes, logins, exports, system events) to `audit-logs run`.

Written by `audit-logs scaffold django`; see README.md next to this file. Nothing here imports Django
models at import time, so `import audit_logs_django` is safe before the apps are loaded.
"""

__all__ = ['log_audit_event', 'log_data_export', 'log_system_event', 'stats']


def stats():
    """The sender's counters: queued (waiting to be sent), sent, dropped (queue full), failed_posts, refused."""
    from .sender import sender

    return sender().stats()


def log_audit_event(*args, **kwargs):
    from .utils import log_audit_event as log

    return log(*args, **kwargs)


def log_system_event(*args, **kwargs):
    from .utils import log_system_event as log

    return log(*args, **kwargs)


def log_data_export(*args, **kwargs):
    from .utils import log_data_export as log

    return log(*args, **kwargs)
