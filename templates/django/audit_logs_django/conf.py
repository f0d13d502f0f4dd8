"""The app's settings, each read from Django's settings with its default (the URL and token also from the environment)."""

import os

from django.conf import settings

DEFAULT_SKIP_MODELS = (
    'sessions.Session',
    'contenttypes.ContentType',
    'admin.LogEntry',
    'migrations.Migration',
)


def events_url():
    return getattr(settings, 'AUDIT_LOGS_EVENTS_URL', None) or os.environ.get('AUDIT_LOGS_EVENTS_URL') or None


def events_token():
    return getattr(settings, 'AUDIT_LOGS_EVENTS_TOKEN', None) or os.environ.get('AUDIT_LOGS_EVENTS_TOKEN') or None


def enabled():
    """Off with AUDIT_LOGS_ENABLED = False, and when there is nowhere to send to."""
    return bool(getattr(settings, 'AUDIT_LOGS_ENABLED', True)) and events_url() is not None


def queue_size():
    return max(1, int(getattr(settings, 'AUDIT_LOGS_QUEUE_SIZE', 10000)))


def flush_timeout():
    """Seconds the process waits at exit for queued events to be sent."""
    return float(getattr(settings, 'AUDIT_LOGS_FLUSH_TIMEOUT', 5.0))


def skip_models():
    """Model labels ('app_label.ModelName', compared case-insensitively) whose changes are not sent."""
    return {m.lower() for m in getattr(settings, 'AUDIT_SKIP_MODELS', DEFAULT_SKIP_MODELS)}


def skip_actions():
    return {a.upper() for a in getattr(settings, 'AUDIT_SKIP_ACTIONS', ())}


def max_value_length():
    """Characters of one changed value kept (a long text is cut, saying how long it was)."""
    return int(getattr(settings, 'AUDIT_LOGS_MAX_VALUE_LENGTH', 2000))


def extra_callable():
    """The dotted path in AUDIT_LOGS_EXTRA, imported: called with the request, it returns the X-Audit-Extra dict."""
    path = getattr(settings, 'AUDIT_LOGS_EXTRA', None)
    if not path:
        return None
    if callable(path):
        return path
    from django.utils.module_loading import import_string

    return import_string(path)
