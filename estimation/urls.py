from django.urls import path

from estimation import views

app_name = "estimation"

urlpatterns = [
    path("", views.index, name="index"),
    path("methodologies/", views.methodology_list, name="methodology-list"),
    path("datasets/new/", views.dataset_upload, name="dataset-upload"),
    path("runs/new/", views.run_create, name="run-create"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/status.json", views.run_status, name="run-status"),
    path("runs/<int:pk>/landcover.png", views.run_landcover_png, name="run-landcover"),
    path("runs/<int:pk>/results.csv", views.run_csv, name="run-csv"),
]
