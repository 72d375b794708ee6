from django.urls import path

from public import heads, market, views

app_name = "public"

urlpatterns = [
    path("public/", views.search, name="search"),
    path("public/serials/", views.serial_lookup, name="serial-lookup"),
    path("public/batches/", views.batches, name="batches"),
    path("public/batches.csv", views.batches_csv, name="batches-csv"),
    path("public/retirements/", views.retirements, name="retirements"),
    path("public/retirements.csv", views.retirements_csv, name="retirements-csv"),
    path("public/buffer-pool/", views.buffer_pool, name="buffer-pool"),
    path("public/buffer-pool.csv", views.buffer_pool_csv, name="buffer-pool-csv"),
    path("public/statistics/", views.statistics, name="statistics"),
    path(
        "public/statistics/<str:series>.csv",
        views.statistics_csv,
        name="statistics-csv",
    ),
    path("market/", market.market, name="market"),
    path("market.csv", market.market_csv, name="market-csv"),
    path("market/map.json", market.market_map, name="market-map"),
    path("market/listings/<int:pk>/", market.market_listing, name="market-listing"),
    path("public/journal-heads/", heads.journal_heads, name="journal-heads"),
    path(
        "public/journal-heads/latest.json",
        heads.journal_head_json,
        name="journal-head-latest",
    ),
    path(
        "public/journal-heads/<int:pk>.json",
        heads.journal_head_json,
        name="journal-head-json",
    ),
    # Certificates are addressed by their random token, never by number.
    path("certificates/<str:token>/", views.certificate_page, name="certificate"),
    path(
        "certificates/<str:token>/certificate.pdf",
        views.certificate_pdf,
        name="certificate-pdf",
    ),
    path("verify/<str:token>/", views.certificate_verify, name="certificate-verify"),
]
