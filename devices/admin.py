"""Django admin for the inventory: search by the names admins type, filter by what they sort by."""

from django.contrib import admin

from .models import ExchangeServer, Mailbox, MobileDevice, Partnership


@admin.register(ExchangeServer)
class ExchangeServerAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "generation",
        "build",
        "site",
        "eas_external_url",
        "iwa_enabled",
        "cert_not_after",
    )
    list_filter = ("generation", "site", "iwa_enabled")
    search_fields = ("name", "fqdn", "admin_display_version", "cert_thumbprint")


class PartnershipInline(admin.TabularInline):
    model = Partnership
    extra = 0
    raw_id_fields = ("device",)
    fields = ("device", "eas_version", "last_success_sync_at", "access_state", "is_stale")
    readonly_fields = ("last_success_sync_at",)


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ("display_name", "primary_smtp_address", "alias", "server", "database")
    list_filter = ("server", "recipient_type")
    list_select_related = ("server",)
    search_fields = (
        "display_name",
        "primary_smtp_address",
        "alias",
        "user_principal_name",
        "=exchange_guid",
    )
    raw_id_fields = ("server",)
    inlines = [PartnershipInline]
    show_full_result_count = False


@admin.register(MobileDevice)
class MobileDeviceAdmin(admin.ModelAdmin):
    list_display = ("device_id", "device_type", "model", "os", "friendly_name")
    list_filter = ("device_type",)
    search_fields = ("device_id", "model", "friendly_name", "imei")
    show_full_result_count = False


@admin.register(Partnership)
class PartnershipAdmin(admin.ModelAdmin):
    list_display = (
        "device",
        "mailbox",
        "eas_version",
        "access_state",
        "last_success_sync_at",
        "is_stale",
    )
    list_filter = ("access_state", "is_stale", "eas_version", "mailbox__server")
    list_select_related = ("device", "mailbox")
    search_fields = ("device__device_id", "mailbox__primary_smtp_address", "mailbox__display_name")
    raw_id_fields = ("device", "mailbox")
    show_full_result_count = False
