"""Worker settings: `BATON_WORKER_*` environment variables, overridden by `baton worker start` options."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_WORKER_", extra="ignore")

    pool: str = Field(default="default", description="The work pool to serve.")
    queues: list[str] = Field(
        default_factory=list, description="Serve only these queues of the pool (default: all)."
    )
    name: str | None = Field(default=None, description="Shown by `baton worker ls`; host-pid if unset.")
    limit: int | None = Field(default=None, ge=1, description="Flow runs at once (default: no limit).")
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    lease_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How long a run stays ours without a heartbeat."
    )
    drain_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM, how long running flows may go on before being stopped.",
    )
    cancel_grace_seconds: float = Field(
        default=10.0, ge=0, description="Between SIGTERM and SIGKILL of a run's process group."
    )
    prestart: int = Field(
        default=2,
        ge=0,
        description=(
            "Keep N pre-started flow-run processes ready (0: a new interpreter per run). A fresh "
            "interpreter costs ~0.3 s of CPU here: 2 ready forks take a worker from ~6 to ~45 "
            "runs/s and created -> started from ~290 ms to ~30 ms."
        ),
    )
    queue_refresh_seconds: float = Field(
        default=15.0, gt=0, description="How often the pool's queues (new ones, priorities) are read again."
    )
    claim_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long the worker retries reporting an end it decided itself (a run's process "
            "died or was cancelled) while the server is unreachable; the report also waits on "
            "the durable queue. A claim is retried until it is answered or the worker stops."
        ),
    )
    api_wait_max_seconds: float = Field(
        default=10.0, gt=0, description="At start, the longest pause between tries to reach the API."
    )
    create_pool: bool = Field(default=True, description="Create the pool (type process) if it is missing.")
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port (off if unset)."
    )
    metrics_host: str = Field(default="127.0.0.1", description="The metrics port's address.")
