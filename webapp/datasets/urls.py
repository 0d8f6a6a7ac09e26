"""Dataset URLs: the home page, upload, a dataset's page and its deletion."""

from django.urls import path

from webapp.datasets import views

urlpatterns = [
    path("", views.home, name="home"),
    path("datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("datasets/samples/<slug:key>/", views.sample_create, name="sample_create"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/delete/", views.dataset_delete, name="dataset_delete"),
]
