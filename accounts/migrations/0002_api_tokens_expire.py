"""Tokens issued before expiry existed (expires_at empty) get the default lifetime from now."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def give_an_expiry(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    expires = timezone.now() + timedelta(days=getattr(settings, "ONEMAP_API_TOKEN_DAYS", 90))
    ApiToken.objects.filter(expires_at__isnull=True).update(expires_at=expires)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(give_an_expiry, migrations.RunPython.noop)]
