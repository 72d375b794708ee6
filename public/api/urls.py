from django.urls import path

from public.api import heads, views

urlpatterns = [
    path("journal-heads/", heads.PublishedHeadListView.as_view(), name="journal-heads"),
    path(
        "journal-heads/public-key/",
        heads.PublicKeyView.as_view(),
        name="journal-key",
    ),
    path("journal-heads/check/", heads.HeadCheckView.as_view(), name="journal-check"),
    path("serials/<str:serial>/", views.SerialView.as_view(), name="serial"),
    path(
        "certificates/<str:number>/",
        views.CertificateView.as_view(),
        name="certificate",
    ),
]
