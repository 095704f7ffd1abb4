"""Secrets at rest: Fernet encryption of model fields (an MCP server's env and headers)
and of the log archive's files (logs/archive.py).

Keys: `MC_SECRET_KEY_FERNET` (or `security.fernet_keys` in mission_control.yml), a
comma-separated list of Fernet keys, the first of which encrypts; without it, a key
derived from SECRET_KEY. Every listed key, and the keys derived from SECRET_KEY and
SECRET_KEY_FALLBACKS, can decrypt, so a key is rotated by putting the new one first,
running `manage.py rotate_secrets` (which re-encrypts every row with it), then
dropping the old one.

A value that no key can decrypt is a configuration error (the key was changed without
keeping the old one), and says so rather than passing for an empty mapping.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models


def derived_key(secret_key: str) -> bytes:
    """A Fernet key derived from a Django SECRET_KEY (purpose-bound, never the key itself)."""
    digest = hashlib.sha256(b"mission-control:fernet:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


_current: list[MultiFernet] = []


def fernet() -> MultiFernet:
    """The process's keys: the first encrypts, all decrypt."""
    if not _current:
        explicit = [k.encode() for k in settings.FERNET_KEYS]
        derived = [derived_key(settings.SECRET_KEY)] + [
            derived_key(k) for k in getattr(settings, "SECRET_KEY_FALLBACKS", [])
        ]
        _current.append(MultiFernet([Fernet(k) for k in explicit + derived]))
    return _current[0]


def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("FERNET_KEYS", "SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _current.clear()


setting_changed.connect(_settings_changed)


def encrypt(text: str) -> str:
    return encrypt_bytes(text.encode()).decode()


def decrypt(token: str) -> str:
    return decrypt_bytes(token.encode()).decode()


def encrypt_bytes(data: bytes) -> bytes:
    return fernet().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    try:
        return fernet().decrypt(token)
    except InvalidToken:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with the configured keys: SECRET_KEY or "
            "MC_SECRET_KEY_FERNET changed; put the previous key in SECRET_KEY_FALLBACKS or "
            "after the new one in MC_SECRET_KEY_FERNET"
        ) from None


def reencrypt_bytes(token: bytes) -> bytes:
    """`token` encrypted again with the first key (MultiFernet.rotate)."""
    try:
        return fernet().rotate(token)
    except InvalidToken:
        decrypt_bytes(token)  # raises the configuration error
        raise


def is_encrypted(text: str) -> bool:
    """Whether `text` is a Fernet token (version byte 0x80), not plain JSON."""
    return text.startswith("gAAAAA")


class EncryptedJSONField(models.TextField):
    """A JSON value stored as a Fernet token in a text column; plain JSON in Python.

    Nothing can be looked up by its content: the database only ever sees ciphertext.
    An empty value is stored as "" (nothing to hide).
    """

    description = "JSON, encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        if value == "":
            return self.get_default()
        return json.loads(decrypt(value) if is_encrypted(value) else value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or hasattr(value, "resolve_expression"):
            return value
        if value in ({}, []):
            return ""
        return encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})
