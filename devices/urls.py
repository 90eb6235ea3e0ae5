"""URLs of the inventory pages."""

from django.urls import path

from . import views

app_name = "devices"
urlpatterns = [
    path("servers/", views.server_list, name="server_list"),
    path("servers/<int:pk>/", views.server_detail, name="server_detail"),
    path("servers/<int:pk>/facts/", views.server_facts, name="server_facts"),
    path("imports/", views.import_list, name="import_list"),
    path("imports/<uuid:group>/", views.import_group, name="import_group"),
]
