from django.contrib import admin

from accounts.models import ApiToken, Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "district", "street")
    list_filter = ("role", "district")
    raw_id_fields = ("street", "officer")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "created_at", "expires_at", "last_used_at")
    readonly_fields = ("key_hash",)
