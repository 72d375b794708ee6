from django.urls import path

from trading import views

app_name = "trading"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("accounts/", views.account_list, name="account-list"),
    path("accounts/<str:number>/", views.account_detail, name="account-detail"),
    path("requests/transfer/", views.transfer_create, name="transfer-create"),
    path("requests/retirement/", views.retirement_create, name="retirement-create"),
    path(
        "requests/cancellation/",
        views.cancellation_create,
        name="cancellation-create",
    ),
    path("review/", views.review_queue, name="review-queue"),
    path("review/<int:pk>/<str:action>/", views.review_action, name="review-action"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("journal/", views.journal, name="journal"),
    path("journal.csv", views.journal_csv, name="journal-csv"),
]
