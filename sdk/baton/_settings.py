"""Client settings: read from `BATON_*` environment variables, then `$BATON_HOME/profile.env`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def baton_home() -> Path:
    return Path(os.environ.get("BATON_HOME", Path.home() / ".baton"))


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_", extra="ignore")

    api_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:4200/api")
    api_key: str | None = None
    broker_url: str | None = Field(
        default=None, description="When set, runs report to the tracker over AMQP instead of HTTP."
    )
    log_level: str = "INFO"
    request_timeout: float = 10.0

    @classmethod
    def load(cls) -> ClientSettings:
        profile = baton_home() / "profile.env"
        return cls(_env_file=profile if profile.exists() else None)  # type: ignore[call-arg]
