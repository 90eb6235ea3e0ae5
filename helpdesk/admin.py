"""Django admin for the helpdesk: the instruction texts Exchange admins adapt to their users."""

from django.contrib import admin

from .models import Instruction


@admin.register(Instruction)
class InstructionAdmin(admin.ModelAdmin):
    list_display = ("platform", "action", "title", "updated_at")
    list_filter = ("platform", "action")
    search_fields = ("title", "body")
    ordering = ("platform", "action")
    readonly_fields = ("updated_at",)
