"""URL map of exsync."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/", views.outbox_message, name="outbox_message"),
    path(
        "outbox/<int:pk>/attachments/<int:index>/",
        views.outbox_attachment,
        name="outbox_attachment",
    ),
    # Only log in and out: no self-service password reset, whose e-mail would land in the
    # outbox (only Exchange admins read it, but a reset link belongs in no shared place).
    # Admins set passwords in /admin/.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inventory/", include("devices.urls")),
    path("batches/", include("migrations_plan.urls")),
    path("people/", include("helpdesk.urls")),
    path("admin/", admin.site.urls),
]
