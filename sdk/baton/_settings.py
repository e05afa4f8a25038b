"""Client settings: read from `BATON_*` environment variables, then `$BATON_HOME/profile.env`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Set by a worker for a flow run's process: the claim its proposals go under.
CLAIM_ID_ENV = "BATON_CLAIM_ID"


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

    # The flow/task engine.
    results_dir: Path | None = Field(
        default=None, description="Persisted results and the task cache; $BATON_HOME/results."
    )
    result_serializer: str = Field(default="pickle", description="pickle or json")
    persist_results: bool = Field(
        default=False, description="Persist every result, not only those of cached tasks."
    )
    outage_grace_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long a flow-run proposal retries an unreachable server before the run "
        "goes on locally (its states are delivered when the server is back).",
    )
    buffer_max_items: int = Field(
        default=100_000, ge=1, description="Task-run states (and, apart, logs) kept for delivery."
    )
    flush_interval: float = Field(default=1.0, gt=0)
    heartbeat_interval: float = Field(default=10.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    close_timeout: float = Field(
        default=10.0, ge=0, description="How long a process exit waits to deliver what is buffered."
    )

    def resolved_results_dir(self) -> Path:
        return self.results_dir or baton_home() / "results"

    @classmethod
    def load(cls) -> ClientSettings:
        profile = baton_home() / "profile.env"
        return cls(_env_file=profile if profile.exists() else None)  # type: ignore[call-arg]
