"""manage.py rotate_secrets: re-encrypt the secrets at rest with the first key: MCP servers'
env and headers, notification channels' targets, and every log archive file.

Rotation: put the new key first in MC_SECRET_KEY_FERNET (keeping the old one after it),
run this, then drop the old key. See missioncontrol/encryption.py.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from logs import archive
from mcps.models import MCPServer
from notifications.models import Channel


class Command(BaseCommand):
    help = (
        "Re-encrypt servers' env and headers, channels' targets and the log archive "
        "with the first MC_SECRET_KEY_FERNET key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        servers = MCPServer.objects.reencrypt_secrets()
        channels = Channel.objects.reencrypt_secrets()
        self.stdout.write(
            f"re-encrypted the secrets of {servers} server(s) and {channels} notification channel(s)"
        )
        files = archive.reencrypt()
        self.stdout.write(f"re-encrypted {files} log archive file(s)")
