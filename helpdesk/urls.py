"""URLs of the helpdesk pages."""

from django.urls import path

from .views import affected, hygiene, person, search, silent

app_name = "helpdesk"
urlpatterns = [
    path("", search.page, name="search"),
    path("affected/", affected.page, name="affected"),
    path("silent/", silent.page, name="silent"),
    path("hygiene/", hygiene.overview, name="hygiene"),
    path("hygiene/stale/", hygiene.page, {"kind": "stale"}, name="hygiene_stale"),
    path("hygiene/duplicates/", hygiene.page, {"kind": "duplicates"}, name="hygiene_duplicates"),
    path("hygiene/limit/", hygiene.page, {"kind": "limit"}, name="hygiene_limit"),
    path("hygiene/easver/", hygiene.page, {"kind": "easver"}, name="hygiene_easver"),
    path("<int:pk>/", person.page, name="person"),
]
