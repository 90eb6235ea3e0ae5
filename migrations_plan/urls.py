"""URLs of the batch pages."""

from django.urls import path

from . import views

app_name = "migrations_plan"
urlpatterns = [
    path("", views.batch_list, name="batch_list"),
    path("new/", views.batch_create, name="batch_create"),
    path("<int:pk>/", views.batch_detail, name="batch_detail"),
    path("<int:pk>/mailboxes/", views.batch_mailboxes_add, name="batch_mailboxes_add"),
    path(
        "<int:pk>/mailboxes/<int:mailbox_id>/<str:action>/", views.batch_member, name="batch_member"
    ),
    path("<int:pk>/<str:action>/", views.batch_action, name="batch_action"),
]
