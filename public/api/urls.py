from django.urls import path

from public.api import views

urlpatterns = [
    path("serials/<str:serial>/", views.SerialView.as_view(), name="serial"),
    path(
        "certificates/<str:number>/",
        views.CertificateView.as_view(),
        name="certificate",
    ),
]
