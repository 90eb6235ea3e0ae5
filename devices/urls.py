"""URLs of the inventory pages."""

from django.urls import path

from . import views, views_probes

app_name = "devices"
urlpatterns = [
    path("servers/", views.server_list, name="server_list"),
    path("servers/<int:pk>/", views.server_detail, name="server_detail"),
    path("servers/<int:pk>/facts/", views.server_facts, name="server_facts"),
    path("imports/", views.import_list, name="import_list"),
    path("imports/<uuid:group>/", views.import_group, name="import_group"),
    path(
        "imports/<uuid:group>/confirm-stale/",
        views.import_confirm_stale,
        name="import_confirm_stale",
    ),
    path("organisation/", views.organisation, name="organisation"),
    path("organisation/<int:pk>/edit/", views.organisation_edit, name="organisation_edit"),
    path("namespaces/add/", views.namespace_edit, name="namespace_add"),
    path("namespaces/<int:pk>/edit/", views.namespace_edit, name="namespace_edit"),
    path("namespaces/<int:pk>/delete/", views.namespace_remove, name="namespace_delete"),
    path("client-profiles/add/", views.client_profile_edit, name="client_profile_add"),
    path("client-profiles/<int:pk>/edit/", views.client_profile_edit, name="client_profile_edit"),
    path(
        "client-profiles/<int:pk>/delete/",
        views.client_profile_remove,
        name="client_profile_delete",
    ),
    path("endpoints/", views_probes.endpoint_probes, name="endpoint_probes"),
    path("endpoints/probe/", views_probes.endpoint_probe_now, name="endpoint_probe_now"),
    path("endpoints/urls/add/", views_probes.probe_target_create, name="probe_target_add"),
    path(
        "endpoints/urls/<int:pk>/delete/",
        views_probes.probe_target_remove,
        name="probe_target_delete",
    ),
    path("servers/<int:pk>/owa-backup/", views.server_owa_backup, name="server_owa_backup"),
    path(
        "accepted-domains/<int:pk>/shared/",
        views.accepted_domain_shared,
        name="accepted_domain_shared",
    ),
    path("imports/file/<int:pk>/map/", views.import_mapping, name="import_mapping"),
]
