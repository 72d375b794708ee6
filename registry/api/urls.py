from django.urls import path
from rest_framework.routers import SimpleRouter

from registry.api import views

router = SimpleRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("projects", views.ProjectViewSet, basename="project")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
    *router.urls,
]
