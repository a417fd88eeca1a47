"""Deployment settings: one TOML file (``COUNCILFLOW_CONFIG``), environment overrides, CLI overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from .errors import InputError, did_you_mean
from .i18n import _

__all__ = ["Settings", "load_settings"]

#: Setting -> environment variable that overrides it.
ENV = {
    "db": "COUNCILFLOW_DB",
    "definitions": "COUNCILFLOW_DEFINITIONS",
    "mail": "COUNCILFLOW_MAIL",
    "mail_from": "COUNCILFLOW_MAIL_FROM",
    "morning_hour": "COUNCILFLOW_MORNING_HOUR",
    "evening_hour": "COUNCILFLOW_EVENING_HOUR",
    "digest_hour": "COUNCILFLOW_DIGEST_HOUR",
    "tick_seconds": "COUNCILFLOW_TICK_SECONDS",
    "lease_seconds": "COUNCILFLOW_LEASE_SECONDS",
    "batch": "COUNCILFLOW_BATCH",
    "max_attempts": "COUNCILFLOW_MAX_ATTEMPTS",
    "timezone": "COUNCILFLOW_TIMEZONE",
    "oparl_base_url": "COUNCILFLOW_OPARL_BASE_URL",
    "base_url": "COUNCILFLOW_BASE_URL",
    "body_name": "COUNCILFLOW_BODY_NAME",
    "trusted_header": "COUNCILFLOW_TRUSTED_HEADER",
    "trusted_proxies": "COUNCILFLOW_TRUSTED_PROXIES",
    "auditors": "COUNCILFLOW_AUDITORS",
    "secret": "COUNCILFLOW_SECRET",
}
_RANGES = {"morning_hour": (0, 23), "evening_hour": (1, 24), "digest_hour": (0, 23), "tick_seconds": (1, 86_400),
           "lease_seconds": (10, 86_400), "batch": (1, 10_000), "max_attempts": (1, 100)}


@dataclass(frozen=True)
class Settings:
    """Every setting with its default; see the README's configuration section."""

    db: str = "sqlite:///councilflow.db"
    definitions: str = "definitions"
    mail: str = ""  # empty: a mail folder beside the database (maildir)
    mail_from: str = "councilflow@localhost"
    morning_hour: int = 8
    evening_hour: int = 18  # mails go out on working days from morning_hour to evening_hour local time
    digest_hour: int = 7
    tick_seconds: int = 60
    lease_seconds: int = 300
    batch: int = 100
    max_attempts: int = 8
    timezone: str = "Europe/Berlin"
    oparl_base_url: str = "https://councilflow.invalid/oparl/v1.1"
    base_url: str = ""  # where staff open councilflow (e.g. https://ratsinfo.kreis.example); mails link to it
    body_name: str = "councilflow"
    # The header the reverse proxy sets after sign-in (e.g. X-Remote-User); empty (default): bearer tokens only.
    trusted_header: str = ""
    # Addresses (or networks, e.g. 127.0.0.1, 10.0.0.0/24) of the proxies the trusted header is accepted from.
    trusted_proxies: str = ""
    auditors: str = ""  # comma-separated e-mail addresses that may read everything and fire nothing
    secret: str = ""  # signs the forms' CSRF tokens; empty: a random one per process

    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The trusted proxies as networks (a single address is a /32 or /128)."""
        nets = []
        for part in self.trusted_proxies.split(","):
            if part.strip():
                try:
                    nets.append(ip_network(part.strip(), strict=False))
                except ValueError:
                    raise InputError(_("trusted_proxies: '{address}' is not an IP address or network").format(
                        address=part.strip())) from None
        return tuple(nets)

    def auditor_set(self) -> frozenset[str]:
        return frozenset(a.strip().lower() for a in self.auditors.split(",") if a.strip())

    def mail_folder(self) -> Path:
        """The default mail folder: ``councilflow-mail`` beside a SQLite file, else in the working directory."""
        if self.db.startswith("sqlite:///") and self.db not in ("sqlite:///", "sqlite:///:memory:"):
            path = Path(self.db.removeprefix("sqlite:///").split("?", 1)[0])
            return path.parent / "councilflow-mail"
        return Path("councilflow-mail")


def _coerce(name: str, value: Any, where: str) -> Any:
    default = getattr(Settings, name)
    if isinstance(default, int):
        try:
            number = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise InputError(_("{where}: {name} must be a whole number, not {value}").format(
                where=where, name=name, value=repr(value)))
        low, high = _RANGES[name]
        if not low <= number <= high:
            raise InputError(_("{where}: {name} must be between {low} and {high}, not {value}").format(
                where=where, name=name, low=low, high=high, value=number))
        return number
    if not isinstance(value, str):
        raise InputError(_("{where}: {name} must be text, not {value}").format(where=where, name=name,
                                                                                value=repr(value)))
    return value


def load_settings(config: str | None = None, env: Mapping[str, str] | None = None,
                  **overrides: str | None) -> Settings:
    """File (``config`` or ``COUNCILFLOW_CONFIG``), then environment, then non-empty ``overrides``."""
    environ = os.environ if env is None else env
    settings = Settings()
    known = [f.name for f in fields(Settings)]
    path = config or environ.get("COUNCILFLOW_CONFIG")
    if path:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise InputError(_("config {path}: cannot read: {reason}").format(path=path, reason=exc.strerror)) \
                from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(_("config {path}: not valid TOML: {reason}").format(path=path, reason=exc)) from None
        table = data.get("councilflow", data)
        if not isinstance(table, dict):
            raise InputError(_("config {path}: [councilflow] must be a table").format(path=path))
        for key, value in table.items():
            if key not in known:
                raise InputError(_("config {path}: unknown setting '{key}'{hint}").format(
                    path=path, key=key, hint=did_you_mean(key, known)))
            settings = replace(settings, **{key: _coerce(key, value, _("config {path}").format(path=path))})
    for name, variable in ENV.items():
        if environ.get(variable):
            settings = replace(settings, **{name: _coerce(name, environ[variable], variable)})
    for name, value in overrides.items():
        if value:
            settings = replace(settings, **{name: _coerce(name, value, f"--{name.replace('_', '-')}")})
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(_("timezone '{zone}' is not an IANA time zone such as Europe/Berlin").format(
            zone=settings.timezone)) from None
    settings.proxy_networks()  # malformed addresses are refused at start
    if settings.evening_hour <= settings.morning_hour:
        raise InputError(_("evening_hour {evening} must be later than morning_hour {morning}: mails go out between "
                           "them").format(evening=settings.evening_hour, morning=settings.morning_hour))
    if settings.trusted_header and not settings.trusted_proxies:
        raise InputError(_("trusted_header '{header}' needs trusted_proxies: the addresses of the reverse proxies it "
                           "is accepted from (e.g. 127.0.0.1)").format(header=settings.trusted_header))
    return settings
