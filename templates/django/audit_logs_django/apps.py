from django.apps import AppConfig


class AuditLogsConfig(AppConfig):
    name = 'audit_logs_django'
    label = 'audit_logs_django'
    verbose_name = 'audit-logs'

    def ready(self):
        from .receivers import connect

        connect()
