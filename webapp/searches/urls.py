from django.urls import path

from webapp.searches import views

urlpatterns = [
    path("new/<int:dataset_pk>/", views.search_create, name="search_create"),
    path("<int:pk>/", views.search_detail, name="search_detail"),
    path("<int:pk>/cancel/", views.search_cancel, name="search_cancel"),
    path("<int:pk>/trials/<int:number>/bundle.zip", views.trial_bundle, name="trial_bundle"),
    path("<int:pk>/trials/<int:number>/predictions.csv", views.trial_predictions, name="trial_predictions"),
]
