from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "webapp.maintenance"
    label = "maintenance"
