"""The request being handled, kept by AuditMiddleware so events sent from a signal know who, where and which request."""

import contextvars

_current_request = contextvars.ContextVar('audit_logs_django_request', default=None)


def current_request():
    return _current_request.get()


def set_current_request(request):
    return _current_request.set(request)


def reset_current_request(token):
    _current_request.reset(token)
