"""Baton's shared models: everything that crosses a process boundary, defined once."""

from ._base import SCHEMA_VERSION, BatonModel, ClientModel, Envelope, slugify, utcnow
from .states import TERMINAL_TYPES, State, StateType, TransitionResult, Verdict

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL_TYPES",
    "BatonModel",
    "ClientModel",
    "Envelope",
    "State",
    "StateType",
    "TransitionResult",
    "Verdict",
    "slugify",
    "utcnow",
]
