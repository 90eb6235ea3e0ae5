"""URLs of the helpdesk pages."""

from django.urls import path

from .views import affected, person, search, silent

app_name = "helpdesk"
urlpatterns = [
    path("", search.page, name="search"),
    path("affected/", affected.page, name="affected"),
    path("silent/", silent.page, name="silent"),
    path("<int:pk>/", person.page, name="person"),
]
