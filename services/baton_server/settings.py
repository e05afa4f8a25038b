"""Server settings: `BATON_*` environment variables, built in `main()` and passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/baton"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    log_level: str = "INFO"

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 4200
    api_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    auth_required: bool = Field(
        default=True, description="Refuse requests without an API key (401) or with too weak a one."
    )
    api_docs_public: bool = Field(
        default=True,
        description="Serve /api/docs and /api/openapi.json without a key; false: any valid key.",
    )
    api_key_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the API re-reads the usable keys. A revoked key stops working within "
        "twice this (10 s): a server that could not re-read them for that long refuses keys (503).",
    )

    # storage: the services (tracker, scheduler, outbox) and the API have pools of their own, so
    # API load cannot starve the services
    db_pool_min: int = 2
    db_pool_max: int = 20
    api_db_pool_min: int = 1
    api_db_pool_max: int = 10
    db_acquire_timeout_seconds: float = Field(
        default=5.0, gt=0, description="An API request waits this long for a connection, then gets 503."
    )

    # tracker
    # batches (task-run states, logs) are large: few at a time bounds memory
    tracker_prefetch: int = 8
    # proposals are small and latency-bound: many in flight
    tracker_rpc_prefetch: int = 64
    default_lease_seconds: float = 30.0
    reaper_interval_seconds: float = 2.0
    outbox_sweep_interval_seconds: float = 1.0
    outbox_sweep_age_seconds: float = Field(
        default=2.0,
        description="Rows older than this and still unsent are republished by the sweeper.",
    )
    publish_timeout_seconds: float = 5.0

    # scheduler
    dispatch_interval_seconds: float = 0.5
    dispatch_lookahead_seconds: float = Field(
        default=0.5, description="Runs due this soon are dispatched now; the claim waits for the time."
    )
    redispatch_after_seconds: float = Field(
        default=300.0, description="A dispatched run still unclaimed after this is dispatched again."
    )
    concurrency_slot_wait_seconds: float = Field(
        default=1.0, description="A run refused for a full concurrency limit is tried again after this."
    )
    shutdown_grace_seconds: float = 10.0
