"""KITT 1.7's ``SettingsService`` over karr_db: the web UI's key-value settings.

Storage is :class:`~karr_db.repositories.settings.WebSettingsRepository`
(``web_settings``); KITT's defaults for keys never stored, and the order in
which a stored value, an environment variable and a fallback win
(:meth:`SettingsService.get_effective`), are KITT's logic and live here.

Deliberately stricter than KITT: a key must be non-empty text and a value
fits :data:`~karr_db.limits.MAX_SETTING_BYTES`; at most
:data:`~karr_db.limits.MAX_WEB_SETTINGS` keys exist (:class:`ValidationError`
names the field otherwise). Each change that alters a value appends an event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from karr_db.kitt_services._base import Service
from karr_db.uow import UnitOfWork

__all__ = ["SETTING_DEFAULTS", "SettingsService"]

#: KITT's values for keys that were never stored.
SETTING_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {"devon_tab_visible": "true", "model_dir": "", "devon_url": "", "results_dir": ""}
)
#: The texts :meth:`SettingsService.get_bool` reads as true.
TRUE_TEXTS = ("true", "1", "yes")


class SettingsService(Service):
    """KITT's ``SettingsService`` over karr_db (see the module docstring)."""

    def get(self, key: str, default: str | None = None) -> str:
        """The stored value; else ``default``; else KITT's default (``""`` for none)."""
        with self._read() as uow:
            stored = uow.web_settings.find(key)
        if stored is not None:
            return stored.value
        if default is not None:
            return default
        return SETTING_DEFAULTS.get(key, "")

    def get_effective(self, key: str, env_var: str, fallback: str) -> str:
        """A non-empty stored value, else a non-empty ``env_var``, else ``fallback``
        (nothing is stored)."""
        return self.get(key) or os.environ.get(env_var, "") or fallback

    def get_source(self, key: str, env_var: str) -> str:
        """Where :meth:`get_effective`'s value comes from: ``saved``, ``env`` or ``default``."""
        if self.get(key):
            return "saved"
        return "env" if os.environ.get(env_var, "") else "default"

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (insert or replace)."""

        def work(uow: UnitOfWork) -> None:
            uow.web_settings.set(key, value)

        self._write(work, "storing a setting")

    def get_all(self) -> dict[str, str]:
        """KITT's defaults, overlaid with every stored setting."""
        with self._read() as uow:
            stored = uow.web_settings.all()
        return {**SETTING_DEFAULTS, **stored}

    def get_bool(self, key: str, default: bool = False) -> bool:
        """The setting read as a boolean (``true``, ``1``, ``yes``, any case)."""
        return self.get(key, str(default).lower()).lower() in TRUE_TEXTS
