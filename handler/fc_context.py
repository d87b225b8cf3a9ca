"""What the handler needs from FC's context object, read defensively (local callers pass less)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from handler.values import Value, field

DEFAULT_FUNCTION_TIMEOUT = 60.0


class Credentials(Value):
    """STS credentials of the function's role; repr hides them so they cannot be logged by accident."""

    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class Invocation(Value):
    """The FC facts of one invocation: who it is (request id) and how long it may take."""

    request_id: str
    timeout: float
    context: Any = field(default=None, repr=False, compare=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, context: Any, env: Mapping[str, str] | None = None) -> Invocation:
        function = getattr(context, "function", None)
        return cls(
            request_id=str(getattr(context, "request_id", "") or f"local-{uuid.uuid4()}"),
            timeout=_positive(getattr(function, "timeout", None)) or DEFAULT_FUNCTION_TIMEOUT,
            context=context,
            env=os.environ if env is None else env,
        )

    # Read when first needed (OSS events), not on every invocation.
    @cached_property
    def region(self) -> str | None:
        return getattr(self.context, "region", None) or self.env.get("FC_REGION") or None

    @cached_property
    def credentials(self) -> Credentials | None:
        return _credentials(getattr(self.context, "credentials", None), self.env)


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _credentials(given: Any, env: Mapping[str, str]) -> Credentials | None:
    # python3.10 passes context.credentials; python3.12 has none and sets ALIBABA_CLOUD_* instead.
    key_id = getattr(given, "access_key_id", None) or getattr(given, "accessKeyId", None)
    if key_id:
        return Credentials(
            access_key_id=key_id,
            access_key_secret=getattr(given, "access_key_secret", None) or getattr(given, "accessKeySecret", ""),
            security_token=getattr(given, "security_token", None) or getattr(given, "securityToken", None),
        )
    if env.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        return Credentials(
            access_key_id=env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
            security_token=env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
        )
    return None
