"""AuditMiddleware: the request in a context variable while it is handled (so events carry its X-Request-Id,
user and address), and X-Audit-User / X-Audit-Extra on the response for the audit-logs proxy, which
records them with the request and strips them before the client sees the response.

Put it after django.contrib.auth.middleware.AuthenticationMiddleware. Works under WSGI and ASGI.
"""

import json
import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from . import conf
from .context import reset_current_request, set_current_request

logger = logging.getLogger('audit_logs_django')

EXTRA_MAX = 4096  # characters of X-Audit-Extra


class AuditMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.extra = conf.extra_callable()

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        token = set_current_request(request)
        try:
            response = self.get_response(request)
        finally:
            reset_current_request(token)
        self.add_headers(request, response, user_id(getattr(request, 'user', None)))
        return response

    async def __acall__(self, request):
        token = set_current_request(request)
        try:
            response = await self.get_response(request)
        finally:
            reset_current_request(token)
        if hasattr(request, 'auser'):  # Django 5: the user without a query on the event loop
            user = await request.auser()
            uid = user_id(user)
        else:
            uid = await sync_to_async(lambda: user_id(getattr(request, 'user', None)))()
        if self.extra is None:
            self.add_headers(request, response, uid)
        else:
            await sync_to_async(self.add_headers)(request, response, uid)
        return response

    def add_headers(self, request, response, uid):
        if uid is not None:
            response['X-Audit-User'] = uid
        if self.extra is None:
            return
        try:
            extra = self.extra(request)
            if extra:
                text = json.dumps(extra, default=str, separators=(',', ':'))  # ASCII only: a valid header value
                if len(text) <= EXTRA_MAX:
                    response['X-Audit-Extra'] = text
                else:
                    logger.warning('X-Audit-Extra not set: %d characters, over %d', len(text), EXTRA_MAX)
        except Exception:
            logger.exception('X-Audit-Extra not set: AUDIT_LOGS_EXTRA failed')


def user_id(user):
    """The authenticated user's primary key, read after the view (a login or logout in it counts); else None."""
    try:
        return str(user.pk) if user is not None and getattr(user, 'is_authenticated', False) else None
    except Exception:
        logger.exception('X-Audit-User not set')
        return None
