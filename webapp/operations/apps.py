from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "webapp.operations"
    label = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from webapp.operations import signals

        signals.connect()
