from django.urls import path

from trading import market_views, views

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
    # The market's signed-in side (the public market is public:market).
    path("market/", market_views.market_desk, name="market-desk"),
    path("market/sell/", market_views.listing_create, name="listing-create"),
    path(
        "market/listings/<int:pk>/lower/",
        market_views.listing_lower,
        name="listing-lower",
    ),
    path(
        "market/listings/<int:pk>/withdraw/",
        market_views.listing_withdraw,
        name="listing-withdraw",
    ),
    path(
        "market/listings/<int:pk>/order/",
        market_views.order_create,
        name="order-create",
    ),
    path("market/orders/<int:pk>/", market_views.order_detail, name="order-detail"),
    path(
        "market/orders/<int:pk>/confirm-payment/",
        market_views.order_confirm_payment,
        name="order-confirm-payment",
    ),
    path(
        "market/orders/<int:pk>/decline/",
        market_views.order_decline,
        name="order-decline",
    ),
]
