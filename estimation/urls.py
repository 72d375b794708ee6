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
    path("runs/<int:pk>/retry/", views.run_retry, name="run-retry"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/landcover.png", views.run_landcover_png, name="run-landcover"),
    path("runs/<int:pk>/results.csv", views.run_csv, name="run-csv"),
    path(
        "runs/<int:pk>/verify/", views.verification_submit, name="verification-submit"
    ),
    path("verifications/", views.verification_list, name="verification-list"),
    path(
        "verifications/<int:pk>/",
        views.verification_detail,
        name="verification-detail",
    ),
    path(
        "verifications/<int:pk>/resubmit/",
        views.verification_resubmit,
        name="verification-resubmit",
    ),
    path(
        "verifications/<int:pk>/issue/",
        views.verification_issue,
        name="verification-issue",
    ),
    path(
        "verifications/<int:pk>/<str:action>/",
        views.verification_decide,
        name="verification-decide",
    ),
]
