from django.urls import path

from webapp.searches import download_views, model_views, views

urlpatterns = [
    path("new/<int:dataset_pk>/", views.search_create, name="search_create"),
    path("estimate/<int:dataset_pk>/", views.search_estimate, name="search_estimate"),
    path("<int:pk>/", views.search_detail, name="search_detail"),
    path("<int:pk>/cancel/", views.search_cancel, name="search_cancel"),
    path("<int:pk>/delete/", views.search_delete, name="search_delete"),
    path("<int:pk>/rerun/", views.search_rerun, name="search_rerun"),
    path("<int:pk>/trials/<int:number>/", model_views.trial_detail, name="trial_detail"),
    path("<int:pk>/trials/<int:number>/bundle.zip", download_views.trial_bundle, name="trial_bundle"),
    path("<int:pk>/trials/<int:number>/predictions.csv", download_views.trial_predictions, name="trial_predictions"),
    path("<int:pk>/trials/<int:number>/evaluation.json", download_views.trial_evaluation, name="trial_evaluation"),
]
