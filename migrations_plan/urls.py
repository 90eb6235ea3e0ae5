"""URLs of the batch pages and of the notices (previews, log, templates)."""

from django.urls import path

from . import views, views_compare, views_continuity, views_notices, views_readiness

app_name = "migrations_plan"
urlpatterns = [
    path("", views.batch_list, name="batch_list"),
    path("new/", views.batch_create, name="batch_create"),
    path("waves/", views_compare.waves, name="waves"),
    path("waves/create/", views_compare.waves_create, name="waves_create"),
    path("accuracy/", views_continuity.prediction_accuracy, name="accuracy"),
    path("readiness/", views_readiness.organisation_readiness, name="readiness"),
    path("notices/<int:notice_id>/", views_notices.notice_detail, name="notice_detail"),
    path("notices/<int:notice_id>/resend/", views_notices.notice_resend, name="notice_resend"),
    path("notice-templates/", views_notices.notice_templates, name="notice_templates"),
    path(
        "notice-templates/<str:name>/",
        views_notices.notice_template_edit,
        name="notice_template_edit",
    ),
    path(
        "notice-templates/<str:name>/reset/",
        views_notices.notice_template_reset,
        name="notice_template_reset",
    ),
    path("<int:pk>/", views.batch_detail, name="batch_detail"),
    path("<int:pk>/mailboxes/", views.batch_mailboxes_add, name="batch_mailboxes_add"),
    path(
        "<int:pk>/mailboxes/<int:mailbox_id>/<str:action>/", views.batch_member, name="batch_member"
    ),
    path("<int:pk>/grace/", views_continuity.batch_grace, name="batch_grace"),
    path("<int:pk>/compare/", views_compare.batch_compare, name="batch_compare"),
    path("<int:pk>/retarget/", views_compare.batch_retarget, name="batch_retarget"),
    path("<int:pk>/acknowledge/", views_readiness.batch_acknowledge, name="batch_acknowledge"),
    path("<int:pk>/reschedule/", views_notices.batch_reschedule, name="batch_reschedule"),
    path("<int:pk>/notices/", views_notices.batch_notices, name="batch_notices"),
    path("<int:pk>/notices/preview/", views_notices.notice_preview, name="notice_preview"),
    # Last: a lifecycle action is any other word after the batch.
    path("<int:pk>/<str:action>/", views.batch_action, name="batch_action"),
]
