"""NAS Studio web app: Django project, Channels routing and the Celery app."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
