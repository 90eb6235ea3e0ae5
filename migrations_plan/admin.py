"""Django admin for batches, notices and the outbox.

Predictions are not here: Django 5.2's admin cannot show a model with a composite primary
key, and the batch pages show them better.
"""

from django.contrib import admin

from .models import AuditEntry, BatchMailbox, MoveBatch, Notice, OutboxMessage


@admin.register(MoveBatch)
class MoveBatchAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "target_server", "target_database", "start_at", "created_by")
    list_filter = ("state", "target_server")
    search_fields = ("name", "target_database")
    date_hierarchy = "start_at"
    raw_id_fields = ("created_by",)


@admin.register(BatchMailbox)
class BatchMailboxAdmin(admin.ModelAdmin):
    list_display = ("mailbox", "batch", "state", "is_active", "source_server")
    list_filter = ("state", "is_active", "batch")
    list_select_related = ("mailbox", "batch", "source_server")
    search_fields = ("mailbox__primary_smtp_address", "mailbox__display_name", "batch__name")
    raw_id_fields = ("mailbox", "batch")


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ("recipient", "kind", "batch", "state", "due_at", "sent_at")
    list_filter = ("kind", "state")
    search_fields = ("recipient", "batch__name")
    raw_id_fields = ("batch", "mailbox")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "batch", "actor", "action")
    list_filter = ("action",)
    search_fields = ("batch__name", "action")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("sent_at", "to", "subject")
    search_fields = ("to", "subject")
