from django.contrib import admin

from command.models import AuditEntry, Category, DispatchRule, Task


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "kind", "major_name", "name", "hotspot_category", "deadline_hours", "accept_minutes",
                    "unit_kinds", "active")
    list_filter = ("kind", "major_name", "active")


@admin.register(DispatchRule)
class DispatchRuleAdmin(admin.ModelAdmin):
    list_display = ("category", "district", "street", "team_street", "auto_file", "enabled")
    list_filter = ("enabled",)
    raw_id_fields = ("district", "street", "team_street")


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Read-only: tasks change only through the dispatch actions (and so the audit log)."""

    list_display = ("number", "state", "category", "district", "street", "deadline", "overdue")
    list_filter = ("state", "overdue", "district")
    search_fields = ("number",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "actor", "action", "object_type", "object_id")
    list_filter = ("action",)
    search_fields = ("object_id", "actor")
