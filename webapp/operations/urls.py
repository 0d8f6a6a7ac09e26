from django.urls import path

from webapp.operations import views

app_name = "operations"
urlpatterns = [
    path("", views.operations_index, name="index"),
    path("status.json", views.operations_status, name="status"),
]
