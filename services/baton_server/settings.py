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
    ui_cookie_secure: bool | None = Field(
        default=None,
        description="Mark the dashboard's session cookie Secure; unset: when the request came over "
        "HTTPS or to a loopback address (which browsers treat as secure).",
    )
    ui_session_hours: float = Field(default=12.0, gt=0, description="How long a dashboard sign-in lasts.")
    api_key_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the API re-reads the usable keys. A revoked key stops working within "
        "twice this (10 s): a server that could not re-read them for that long refuses keys (503).",
    )

    # observability: Prometheus metrics (`GET /metrics` on the API; a port of their own for
    # processes without the API), log format, traces
    metrics_enabled: bool = Field(default=True, description="Serve GET /metrics (no key needed).")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="A process without the API serves its metrics on this port (on metrics_host).",
    )
    metrics_host: str = "127.0.0.1"
    metrics_max_age_seconds: float = Field(
        default=5.0, ge=0, description="Stored counts (runs, the outbox) are read at most this often."
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
    # scheduler: runs made ahead of time (at least min_runs or min_ahead, at most max_runs and max_ahead)
    scheduler_min_runs: int = Field(default=3, ge=1, description="Future runs each schedule keeps, at least.")
    scheduler_min_ahead_seconds: float = Field(
        default=3600.0, ge=0, description="Each schedule keeps runs this far ahead, at least."
    )
    scheduler_max_runs: int = Field(
        default=100, ge=1, description="Future runs each schedule keeps, at most."
    )
    scheduler_max_ahead_seconds: float = Field(
        default=100 * 86400.0, gt=0, description="No run is made further ahead than this."
    )
    scheduler_batch_runs: int = Field(default=1000, ge=1, le=10_000, description="Runs per INSERT, at most.")
    scheduler_missed_after_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A scheduled run not dispatched this long after its slot was missed (the "
        "scheduler was down): its schedule's catch-up policy decides whether it runs.",
    )
    scheduler_max_sleep_seconds: float = Field(
        default=30.0, gt=0, description="The scheduler sleeps until its next due thing, at most this long."
    )
    late_after_seconds: float = Field(
        default=15.0, gt=0, description="A run still Scheduled this long past its time becomes Late."
    )
    backfill_max_runs: int = Field(default=1000, ge=1, description="Slots one backfill may make, at most.")

    # events
    events_retention_days: int = Field(
        default=7, ge=1, le=3650, description="Days of events kept; older days' partitions are dropped."
    )
    events_prefetch: int = Field(default=2000, ge=1, description="Events the store consumer holds at once.")
    events_batch_size: int = Field(default=1000, ge=1, le=10_000, description="Events per INSERT, at most.")
    events_trusted_users: str = Field(
        default="",
        description="Comma-separated RabbitMQ users, besides the server's own, whose `baton.` events "
        "are accepted (RabbitMQ checks a message's user_id against its connection's user).",
    )
    events_task_run_states: bool = Field(
        default=False, description="Make every task-run transition an event (else per deployment)."
    )
    events_stream_backfill_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A reconnecting stream is sent again what was stored this long "
        "before its last event, so nothing committed out of order is missed.",
    )
    worker_stopped_check_seconds: float = 5.0
    worker_broker_url: str = Field(
        default="",
        description="The AMQP URL the API gives workers (GET /api/workers/connection), with the "
        "worker user's credentials (baton-worker in deploy/rabbitmq). Empty: the server's own "
        "broker_url, fine on one machine; a worker's BATON_BROKER_URL still overrides it.",
    )
    webhook_render_timeout_seconds: float = Field(default=1.0, gt=0)

    # router
    router_prefetch: int = Field(default=2000, ge=1, description="Events the router holds at once.")
    router_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Events applied in one transaction, at most."
    )
    router_late_seconds: float = Field(
        default=0.5,
        ge=0,
        le=3600,
        description="The late-arrival allowance: a proactive window is judged this long after it "
        "ends, so an expected event that occurred inside it but arrived a little late still counts.",
    )
    router_timer_seconds: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="How often the router looks for proactive windows that are over.",
    )
    router_reload_seconds: float = Field(
        default=60.0, gt=0, description="Every automation is re-read this often, besides on each NOTIFY."
    )
    router_webhook_concurrency: int = Field(default=16, ge=1, description="Webhook calls made at once.")
    router_template_seconds: float = Field(default=1.0, gt=0, description="A template renders within this.")
