from rest_framework.routers import SimpleRouter

from trading.api import views

router = SimpleRouter()
router.register("accounts", views.AccountViewSet, basename="account")
router.register("batches", views.BatchViewSet, basename="batch")
router.register("trade-requests", views.TradeRequestViewSet, basename="trade-request")
router.register("ledger-entries", views.LedgerEntryViewSet, basename="ledger-entry")
router.register("listings", views.ListingViewSet, basename="listing")
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = router.urls
