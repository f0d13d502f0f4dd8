"""Builds one event as `POST /_audit/events` takes it, and hands it to the sender. Never raises into the app."""

import datetime
import decimal
import ipaddress
import logging
import re
import uuid

from . import conf
from .context import current_request
from .sender import sender

logger = logging.getLogger('audit_logs_django')

ACTION = re.compile(r'^[A-Z][A-Z0-9_]{0,63}$')
SEVERITIES = ('INFO', 'WARNING', 'ERROR', 'SECURITY', 'PERFORMANCE')


def send(action, *, user=None, actor=None, request=None, target=None, changes=None, reason=None, severity=None, extra=None):
    """Queues one event; False when it was not queued (disabled, skipped, invalid, or the queue full)."""
    try:
        action = str(action).upper()
        if not ACTION.match(action):
            logger.warning('audit event not sent: action %r is not an upper-case word', action)
            return False
        if not conf.enabled() or action in conf.skip_actions():
            return False
        request = request if request is not None else current_request()
        event = {'id': str(uuid.uuid4()), 'created_at': now(), 'action': action}
        actor = actor or actor_of(user if user is not None else getattr(request, 'user', None))
        # the server's bounds (README, data model): ids, names and types 200 characters, reason 4000
        if actor:
            event['actor'] = {k: str(v)[:200] for k, v in actor.items() if v is not None}
        if target:
            event['target'] = {k: str(v)[:200] for k, v in target.items() if v is not None}
        if changes:
            event['changes'] = changes
        if reason:
            event['reason'] = str(reason)[:4000]
        if severity:
            event['severity'] = severity
        if request is not None:
            request_id = request.META.get('HTTP_X_REQUEST_ID')
            if request_id:
                event['request_id'] = request_id
            ip = client_ip(request)
            if ip:
                event['ip'] = ip
        if extra:
            event['extra'] = jsonable(extra)
        return sender().submit(event)
    except Exception:  # an audit event must never break the request that caused it
        logger.exception('audit event %s not sent', action)
        return False


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds')


def actor_of(user):
    """{'id', 'name'} of an authenticated user; None for no user or an anonymous one (evaluating a lazy request.user)."""
    if user is None or not getattr(user, 'is_authenticated', False):
        return None
    actor = {'id': str(user.pk)}
    name = user.get_username() if hasattr(user, 'get_username') else None
    if name:
        actor['name'] = str(name)
    return actor


def target_of(obj):
    if obj is None:
        return None
    meta = getattr(obj, '_meta', None)
    target = {'type': meta.label if meta else type(obj).__name__}
    if getattr(obj, 'pk', None) is not None:
        target['id'] = str(obj.pk)
    return target


def client_ip(request):
    """REMOTE_ADDR; behind the audit-logs proxy (a loopback peer) the last X-Forwarded-For entry, the address it saw."""
    remote = request.META.get('REMOTE_ADDR') or ''
    forwarded = request.META.get('HTTP_X_FORWARDED_FOR')
    try:
        if forwarded and ipaddress.ip_address(remote).is_loopback:
            last = forwarded.split(',')[-1].strip()
            ipaddress.ip_address(last)
            return last
    except ValueError:
        pass
    return remote or None


def value(v):
    """A field's value as JSON: dates in ISO 8601, decimals and UUIDs as strings, files by name, long text cut."""
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    if isinstance(v, (decimal.Decimal, uuid.UUID)):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return f'[{len(v)} bytes]'
    if isinstance(v, (list, tuple)):
        return [value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): value(x) for k, x in v.items()}
    text = str(getattr(v, 'name', v)) if hasattr(v, 'storage') else str(v)  # a FieldFile: its name
    limit = conf.max_value_length()
    return text if len(text) <= limit else f'{text[:limit]}…[{len(text)} characters]'


def jsonable(d):
    return value(dict(d))


def normalize_changes(changes):
    """{field: {'before', 'after'}}; a bare value (as the seeds pass {'field': 'new value'}) is the after."""
    if not changes:
        return None
    out = {}
    for field, change in dict(changes).items():
        if isinstance(change, dict) and change and set(change) <= {'before', 'after'}:
            out[str(field)] = {k: value(change.get(k)) for k in ('before', 'after')}
        else:
            out[str(field)] = {'before': None, 'after': value(change)}
    return out
