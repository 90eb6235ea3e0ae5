"""URL map of exsync."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/", views.outbox_message, name="outbox_message"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("inventory/", include("devices.urls")),
    path("batches/", include("migrations_plan.urls")),
    path("admin/", admin.site.urls),
]
