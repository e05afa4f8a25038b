"""The broker topology is a documented contract (DESIGN.md, README, AsyncAPI): outside
publishers and subscribers rely on these exact names."""

from __future__ import annotations

import subprocess
import sys
import uuid

from baton_schemas import topology
from baton_schemas.envelopes import RunKind
from baton_schemas.states import StateType


def test_exchanges_and_their_types() -> None:
    assert {name: kind.value for name, kind in topology.EXCHANGES.items()} == {
        "baton.events": "topic",
        "baton.states": "topic",
        "baton.runs": "direct",
        "baton.tracker": "direct",
        "baton.control": "topic",
        "baton.dead": "fanout",
    }
    assert (topology.TRACKER_QUEUE, topology.TRACKER_RPC_QUEUE, topology.DEAD_QUEUE) == (
        "baton.tracker",
        "baton.tracker.rpc",
        "baton.dead",
    )


def test_names_built_from_ids() -> None:
    run_id = uuid.UUID(int=7)
    assert topology.pool_queue_name("local", "default") == "baton.pool.local.default"
    assert topology.pool_routing_key("local", "default") == "local.default"
    assert topology.worker_control_queue("w1") == "baton.worker.w1"
    assert topology.worker_control_key("w1") == "worker.w1"
    assert topology.flow_run_control_key(run_id) == f"flow-run.{run_id}"
    key = topology.state_routing_key(RunKind.FLOW_RUN, StateType.FAILED, "etl-daily")
    assert key == "flow-run.failed.etl-daily"


def test_queue_arguments_dead_letter_to_baton_dead_except_expired_rpcs() -> None:
    assert topology.pool_queue_arguments() == {
        "x-queue-type": "quorum",
        "x-delivery-limit": topology.POOL_DELIVERY_LIMIT,
        "x-dead-letter-exchange": "baton.dead",
    }
    # an RPC nobody waits for any more is dropped: its caller resends it under the same id
    assert topology.tracker_rpc_queue_arguments() == {"x-message-ttl": topology.RPC_MESSAGE_TTL_MS}
    assert topology.pool_queue_arguments() is not topology.pool_queue_arguments()  # callers may edit


def test_topology_needs_no_amqp_client() -> None:
    probe = "import sys, baton_schemas.topology; print('aio_pika' in sys.modules, 'baton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
