"""Model changes (CREATE, UPDATE, DELETE with before/after) and logins, from Django's signals.

Not during migrations: `migrate` sends pre_migrate before its first migration and post_migrate after the
last, and what it (and the receivers of those signals: content types, permissions) saves is not audited.
Nor fixtures (`loaddata` saves raw).
"""

import decimal
import threading

from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_migrate, post_save, pre_migrate, pre_save

from . import conf
from .events import send, target_of, value

_migrating = threading.Event()
_last_app = None
BEFORE = '_audit_logs_before'


def on_pre_migrate(sender, app_config=None, **kwargs):
    global _last_app
    if not _migrating.is_set():
        _migrating.set()
        # post_migrate is sent to the same apps, in the same order: connected now, this receiver runs
        # after every other one (content types, permissions) for the last of them
        _last_app = [a.label for a in django_apps.get_app_configs() if a.models_module is not None][-1:]
        post_migrate.connect(on_post_migrate, dispatch_uid='audit_logs_django.post_migrate')


def on_post_migrate(sender, app_config=None, **kwargs):
    if app_config is not None and [app_config.label] == _last_app:
        _migrating.clear()


def migrating():
    return _migrating.is_set()


def audited(model, raw=False):
    if raw or _migrating.is_set():
        return False
    skip = conf.skip_models()
    meta = model._meta
    return meta.label_lower not in skip and meta.app_label not in skip and not meta.auto_created


def fields(model, only=None):
    return [f for f in model._meta.concrete_fields if only is None or f.name in only or f.attname in only]


def python_value(field, v):
    """The value as the database keeps it: an assigned '13' is the Decimal('13.00') a DecimalField stores."""
    try:
        v = field.to_python(v)
        if isinstance(v, decimal.Decimal) and getattr(field, 'decimal_places', None) is not None and v.is_finite():
            v = v.quantize(decimal.Decimal(1).scaleb(-field.decimal_places))
        return v
    except Exception:
        return v


def on_pre_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    if not audited(sender, raw) or instance._state.adding or instance.pk is None:
        return
    try:
        chosen = fields(sender, update_fields)
        before = sender._base_manager.using(using).filter(pk=instance.pk).values(*[f.attname for f in chosen]).first()
        setattr(instance, BEFORE, before)
    except Exception:
        setattr(instance, BEFORE, None)


def on_post_save(sender, instance, created, raw=False, update_fields=None, **kwargs):
    if not audited(sender, raw):
        return
    before = instance.__dict__.pop(BEFORE, None)
    if created:
        changes = {f.attname: {'before': None, 'after': value(python_value(f, f.value_from_object(instance)))} for f in fields(sender)}
        send('CREATE', target=target_of(instance), changes=changes)
        return
    if before is None:  # saved with a primary key that was not there (an update that inserted)
        send('UPDATE', target=target_of(instance))
        return
    changes = {}
    for f in fields(sender, update_fields):
        old, new = python_value(f, before.get(f.attname)), python_value(f, f.value_from_object(instance))
        if old != new:
            changes[f.attname] = {'before': value(old), 'after': value(new)}
    if changes:
        send('UPDATE', target=target_of(instance), changes=changes)


def on_post_delete(sender, instance, **kwargs):
    if not audited(sender):
        return
    changes = {f.attname: {'before': value(python_value(f, f.value_from_object(instance))), 'after': None} for f in fields(sender)}
    send('DELETE', target=target_of(instance), changes=changes)


def on_logged_in(sender, request, user, **kwargs):
    send('LOGIN', user=user, request=request, target=target_of(user))


def on_logged_out(sender, request, user, **kwargs):
    send('LOGOUT', user=user, request=request, target=target_of(user))


def on_login_failed(sender, credentials, request=None, **kwargs):
    # only the user name, never the password (Django has already starred it in `credentials`, but it is not sent at all)
    field = getattr(get_user_model(), 'USERNAME_FIELD', 'username')
    name = credentials.get(field, credentials.get('username'))
    # the identity claimed is the actor of a failed login (its id, as stats groups failed logins by actor)
    actor = {'id': str(name)[:200], 'name': str(name)[:200]} if name else None
    send('LOGIN_FAILED', actor=actor, request=request, extra={'username': actor['name']} if actor else None)


def connect():
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

    uid = 'audit_logs_django.'
    pre_migrate.connect(on_pre_migrate, dispatch_uid=uid + 'pre_migrate')
    pre_save.connect(on_pre_save, dispatch_uid=uid + 'pre_save')
    post_save.connect(on_post_save, dispatch_uid=uid + 'post_save')
    post_delete.connect(on_post_delete, dispatch_uid=uid + 'post_delete')
    user_logged_in.connect(on_logged_in, dispatch_uid=uid + 'logged_in')
    user_logged_out.connect(on_logged_out, dispatch_uid=uid + 'logged_out')
    user_login_failed.connect(on_login_failed, dispatch_uid=uid + 'login_failed')

