from rest_framework.routers import SimpleRouter

from estimation.api import views

router = SimpleRouter()
router.register(
    "landcover-datasets", views.LandCoverDatasetViewSet, basename="landcover-dataset"
)
router.register("methodologies", views.MethodologyViewSet, basename="methodology")
router.register("class-schemes", views.ClassSchemeViewSet, basename="class-scheme")
router.register(
    "estimation-runs", views.EstimationRunViewSet, basename="estimation-run"
)
router.register("verifications", views.VerificationViewSet, basename="verification")

urlpatterns = router.urls
