"""The seeds' helpers: log_audit_event, log_system_event, log_data_export. Each queues one event and returns
whether it was queued; none raises into the app. `user` and `request` default to the current request's."""

from .events import SEVERITIES, normalize_changes, send, target_of


def log_audit_event(user=None, action='VIEW', content_object=None, changes=None, reason=None, request=None, extra=None):
    """Any action (an upper-case word: VIEW, APPROVE, ...) on `content_object`, with `changes` as
    {field: {'before': x, 'after': y}} or {field: new_value}."""
    return send(
        action,
        user=user,
        request=request,
        target=target_of(content_object),
        changes=normalize_changes(changes),
        reason=reason,
        extra=extra,
    )


def log_system_event(event_type='INFO', title='', description='', user=None, request=None, extra=None):
    """A system event (action SYSTEM): its severity is event_type (INFO, WARNING, ERROR, SECURITY, PERFORMANCE)."""
    severity = str(event_type).upper()
    details = {'title': title, 'description': description, **(extra or {})}
    if severity not in SEVERITIES:
        details['event_type'] = str(event_type)
        severity = 'INFO'
    return send('SYSTEM', user=user, request=request, severity=severity, reason=title or None, extra=details)


def log_data_export(user=None, export_type='', file_format='', record_count=None, file_size=None, filters=None, request=None):
    """An EXPORT of `export_type` (the target type, e.g. 'shop.Order'), with its format, size and filters in extra."""
    details = {'file_format': file_format, 'record_count': record_count, 'file_size': file_size, 'filters': filters or {}}
    target = {'type': str(export_type)} if export_type else None
    return send('EXPORT', user=user, request=request, target=target, extra={k: v for k, v in details.items() if v is not None})
