"""Issue device tokens: one device, a gateway, or every known device at once (JSON map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from realtime.devices import all_device_ids, issue_device_token, issue_device_tokens, known_devices
from realtime.models import DeviceCredential


class Command(BaseCommand):
    help = "Print a new device token (only its hash is stored). Traccar Client: server URL http://HOST:8000/ingest/osmand?token=TOKEN"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("device_id", nargs="?", help="the device id of an officer's phone or a vehicle's GPS")
        parser.add_argument("--gateway", metavar="NAME", help="a gateway token that may report for any known device")
        parser.add_argument("--all", action="store_true", help="a token for every known device, as a JSON map")
        parser.add_argument("--out", type=Path, help="with --all: write the JSON map here (mode 600)")
        parser.add_argument("--revoke", action="store_true", help="revoke every token of DEVICE_ID (or --gateway NAME)")

    def handle(self, *args: Any, **options: Any) -> None:
        device_id, gateway = options["device_id"], options["gateway"]
        if options["revoke"]:
            name = gateway or device_id
            if not name:
                raise CommandError("name the device (or --gateway NAME) to revoke")
            count = DeviceCredential.objects.filter(device_id=name, gateway=bool(gateway)).update(revoked=True)
            self.stdout.write(f"revoked {count} token(s) of {name}")
        elif options["all"]:
            tokens = issue_device_tokens(all_device_ids())
            text = json.dumps(tokens, indent=1)
            if options["out"]:
                options["out"].touch(mode=0o600)
                options["out"].write_text(text)
                self.stderr.write(f"{len(tokens)} device tokens written to {options['out']}")
            else:
                self.stdout.write(text)
        elif gateway:
            self.stdout.write(issue_device_token(gateway, gateway=True))
        elif device_id:
            if device_id not in known_devices([device_id]):
                raise CommandError(f"no officer or vehicle carries device {device_id}")
            self.stdout.write(issue_device_token(device_id))
        else:
            raise CommandError("give DEVICE_ID, --gateway NAME or --all")
