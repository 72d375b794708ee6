from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("projects/", views.project_list, name="project-list"),
    path("projects/map.geojson", views.project_map_data, name="project-map-data"),
    path("projects/counties.geojson", views.county_map_data, name="county-map-data"),
    path("projects/new/", views.project_create, name="project-create"),
    path("projects/<str:code>/", views.project_detail, name="project-detail"),
    path("projects/<str:code>/edit/", views.project_edit, name="project-edit"),
    path(
        "projects/<str:code>/<str:action>/",
        views.project_action,
        name="project-action",
    ),
    path("documents/<int:pk>/", views.document_download, name="document-download"),
    path("roles/", views.role_grant_queue, name="role-grant-queue"),
    path("roles/new/", views.role_grant_create, name="role-grant-create"),
    path("roles/audit/", views.role_grant_audit, name="role-grant-audit"),
    path(
        "roles/<int:pk>/<str:action>/",
        views.role_grant_decide,
        name="role-grant-decide",
    ),
    path(
        "password/set/<uidb64>/<token>/",
        views.PasswordSetView.as_view(),
        name="password-set",
    ),
    path("password/set/done/", views.password_set_done, name="password-set-done"),
    path(
        "password/reset/",
        views.PasswordLinkRequestView.as_view(),
        name="password-reset",
    ),
    path("password/reset/sent/", views.password_link_sent, name="password-reset-sent"),
    path(
        "alerts/<int:pk>/acknowledge/",
        views.alert_acknowledge,
        name="alert-acknowledge",
    ),
]
