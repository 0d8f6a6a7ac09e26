"""The datasets app: uploads, their profiles, and the home page."""

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "webapp.datasets"
    label = "datasets"
