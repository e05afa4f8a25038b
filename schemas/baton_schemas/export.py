"""JSON Schema per broker message and an AsyncAPI 3.0 document of the exchanges.

Another system can build a subscriber or publisher from these files alone; `baton schemas
export` writes them into `schemas/`, and a test fails when the committed copies are stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .envelopes import message_catalogue
from .topology import (
    CONTROL,
    DIRECT_REPLY_TO,
    EVENTS,
    RUNS,
    STATES,
    TRACKER,
    TRACKER_ROUTING_KEY,
    flow_run_control_key,
    pool_queue_name,
    pool_routing_key,
)

ASYNCAPI_FILE = "asyncapi.json"
JSONSCHEMA_DIR = "jsonschema"


def json_schemas() -> dict[str, dict[str, Any]]:
    return {
        name: model.model_json_schema(mode="serialization") for name, model in message_catalogue().items()
    }


def _channel(address: str, description: str, messages: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
    }


def asyncapi_document() -> dict[str, Any]:
    schemas = json_schemas()
    components_schemas: dict[str, Any] = {}
    for name, schema in schemas.items():
        schema = dict(schema)
        for def_name, definition in schema.pop("$defs", {}).items():
            components_schemas.setdefault(def_name, definition)
        components_schemas[name] = schema
    text = orjson.dumps(components_schemas).decode().replace("#/$defs/", "#/components/schemas/")
    components_schemas = orjson.loads(text)
    amqp_topic = {"amqp": {"is": "routingKey", "exchange": {"type": "topic", "durable": True}}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Baton broker API",
            "version": "1",
            "description": (
                "RabbitMQ exchanges of Baton. Bodies are JSON (content type application/json); "
                "`message_id` is the model's id. Subscribers bind their own queue."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "states": {
                **_channel(
                    "{run_kind}.{state_type}.{flow_slug}",
                    f"Exchange {STATES} (topic): every accepted state change, e.g. "
                    "flow-run.failed.etl-daily. Bind flow-run.failed.# or *.*.etl-daily. "
                    "At least once: de-duplicate on message_id. A flow run's changes arrive in "
                    "order (their first copies); a task run's carry state_version to order by.",
                    ["StateChange"],
                ),
                "parameters": {
                    "run_kind": {"enum": ["flow-run", "task-run"]},
                    "state_type": {
                        "enum": [
                            "scheduled",
                            "pending",
                            "running",
                            "completed",
                            "failed",
                            "cancelled",
                            "crashed",
                            "paused",
                            "cancelling",
                        ]
                    },
                    "flow_slug": {"description": "The flow's name, lower case, dashes."},
                },
                "bindings": {**amqp_topic},
            },
            "events": {
                **_channel(
                    "{event}",
                    f"Exchange {EVENTS} (topic): events by name, the routing key being the "
                    "event's name. Any system may publish here; Baton stores every event once "
                    "(by id; delivery is at least once), streams it and matches triggers against "
                    "it. Every accepted flow-run transition is the event baton.flow-run.{StateName} "
                    "(its id the state's id, follows the previous state's). Names under 'baton.' "
                    "are accepted only from Baton's own RabbitMQ users (the user_id property, "
                    "which RabbitMQ validates). Also accepted: CloudEvents 1.0, structured "
                    "(content type application/cloudevents+json) or binary (attributes in "
                    "cloudEvents:-prefixed headers). Invalid, undecodable or oversized messages "
                    "are parked in baton.dead with the reason in x-baton-dead-reason.",
                    ["Event"],
                ),
                "parameters": {"event": {"description": "The event name: dotted words, at most 255 bytes."}},
                "bindings": {**amqp_topic},
            },
            "tracker": _channel(
                TRACKER_ROUTING_KEY,
                f"Exchange {TRACKER} (direct): state proposals and run creation (RPC over "
                "direct reply-to, answered with RpcReply), task-run states, logs and heartbeats "
                "(a heartbeat sent as an RPC is answered with those of its runs being cancelled).",
                ["ProposeState", "CreateFlowRun", "TaskRunStates", "Logs", "Heartbeat"],
            ),
            "replies": _channel(DIRECT_REPLY_TO, "Replies to tracker RPCs.", ["RpcReply"]),
            "runs": {
                **_channel(
                    pool_routing_key("{pool}", "{queue}"),
                    f"Exchange {RUNS} (direct): due deployment runs, one queue per work queue "
                    f"({pool_queue_name('{pool}', '{queue}')}).",
                    ["FlowRunDispatch"],
                ),
                "parameters": {"pool": {}, "queue": {}},
            },
            "control": {
                **_channel(
                    flow_run_control_key("{id}"),
                    f"Exchange {CONTROL} (topic): cancel and pause requests.",
                    ["ControlMessage"],
                ),
                "parameters": {"id": {}},
            },
        },
        "operations": {
            "receiveStateChanges": {
                "action": "receive",
                "channel": {"$ref": "#/channels/states"},
            },
            "sendEvents": {"action": "send", "channel": {"$ref": "#/channels/events"}},
            "sendToTracker": {
                "action": "send",
                "channel": {"$ref": "#/channels/tracker"},
                "reply": {"channel": {"$ref": "#/channels/replies"}},
            },
            "receiveRuns": {"action": "receive", "channel": {"$ref": "#/channels/runs"}},
            "receiveControl": {"action": "receive", "channel": {"$ref": "#/channels/control"}},
        },
        "components": {
            "schemas": components_schemas,
            "messages": {
                name: {"name": name, "payload": {"$ref": f"#/components/schemas/{name}"}} for name in schemas
            },
        },
    }


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def rendered() -> dict[str, bytes]:
    """Every file `export` writes, by path relative to the output folder."""
    files = {f"{JSONSCHEMA_DIR}/{name}.json": _dump(s) for name, s in json_schemas().items()}
    files[ASYNCAPI_FILE] = _dump(asyncapi_document())
    return files


def export(out: Path) -> list[Path]:
    written = []
    for relative, content in rendered().items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
