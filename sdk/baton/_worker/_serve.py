"""`my_flow.serve(name=...)`: a deployment and a worker for it, in one process.

    if __name__ == "__main__":
        etl.serve(name="nightly", cron="0 3 * * *", limit=2)

Creates the pool (type `process`, default `serve-<flow>`) if it is missing, registers the
deployment through the API (as `Flow.deploy()` does: same options), then runs the worker loop
until SIGTERM / Ctrl-C (a second signal stops running flows at once). Each run still gets a
process of its own, loaded from this file: the module is imported there without running its
`if __name__ == "__main__":` block.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

from baton_schemas import slugify
from baton_schemas.job_templates import default_process_template
from baton_schemas.pools import WorkPoolCreate

from .._definitions import FlowDefinition
from .._deploy.deployer import deploy_flow
from .._deployments import connect
from .._settings import CLAIM_ID_ENV
from .._transport import RequestRejected
from ._settings import WorkerSettings
from ._worker import Worker, configure_logging

logger = logging.getLogger("baton.worker")

WORKER_OPTIONS = (
    "limit",
    "prestart",
    "heartbeat_seconds",
    "lease_seconds",
    "drain_seconds",
    "cancel_grace_seconds",
)


async def run_worker(settings: WorkerSettings) -> None:
    """Run a worker until SIGTERM / SIGINT (when called from the main thread) and drain it."""
    worker = Worker(settings)
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if not stop.is_set():
                logger.info("%s: draining (send it again to stop running flows now)", sig.name)
                stop.set()
            else:
                worker.force_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    await worker.run(stop)


def default_pool(flow: FlowDefinition[..., Any]) -> str:
    return f"serve-{slugify(flow.name)}"[:63].rstrip("-_")


def serve(
    flow: FlowDefinition[..., Any], name: str, *, work_pool_name: str | None = None, **options: Any
) -> None:
    """See the module's docstring. Options: those of `Flow.deploy()`, and the worker's
    `limit`, `prestart`, `heartbeat_seconds`, `lease_seconds`, `drain_seconds`,
    `cancel_grace_seconds`."""
    if os.environ.get(CLAIM_ID_ENV):  # imported by one of our own run processes: not again
        logger.warning("serve() called inside a flow run's process; ignored (guard it with __main__)")
        return
    pool = work_pool_name or default_pool(flow)
    worker_options = {key: options.pop(key) for key in WORKER_OPTIONS if key in options}
    queue = options.get("work_queue_name", "default")
    configure_logging(os.environ.get("BATON_LOG_LEVEL", "INFO"))
    _ensure_pool(pool)
    deployment = deploy_flow(flow, name, pool, **options)
    logger.info(
        "Serving deployment %r of flow %r on pool %r; start a run with: baton deployment run '%s/%s'",
        deployment.name,
        deployment.flow_name,
        pool,
        deployment.flow_name,
        deployment.name,
    )
    settings = WorkerSettings(
        pool=pool, queues=[queue], name=f"{deployment.name}-{os.getpid()}", **worker_options
    )
    asyncio.run(run_worker(settings))


def _ensure_pool(pool: str) -> None:
    with connect() as client:
        try:
            client.read_work_pool(pool)
        except RequestRejected as exc:
            if exc.status != 404:
                raise
            logger.info("Creating work pool %r (type process)", pool)
            try:
                client.create_work_pool(
                    WorkPoolCreate(name=pool, base_job_template=default_process_template())
                )
            except RequestRejected as again:
                if again.status != 409:  # created meanwhile
                    raise
