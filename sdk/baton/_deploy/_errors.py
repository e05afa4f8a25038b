"""The one error a deploy raises for anything the user must fix: a readable message, no traceback."""

from __future__ import annotations

from .._exceptions import BatonError


class DeployError(BatonError, ValueError):
    """baton.yaml, an entrypoint or a deployment's options are wrong; the message says where."""
