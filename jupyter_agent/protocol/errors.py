"""Client errors and the error classification of spec §3.5-3.7.

Every failure the transports can see becomes one ``AgentError`` subclass carrying a user-facing
message, whether it is retryable, and an optional server-suggested delay. Messages never
include request headers (the API key lives there).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from .ratelimits import parse_all_rate_limits
from .retry import MAX_RETRY_DELAY, parse_retry_delay, retry_after_from_headers


class AgentError(Exception):
    """Base of every error a turn can end with."""

    retryable: bool = False
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        code: str | None = None,
        status: int | None = None,
        delay: float | None = None,
        rate_limits: list[Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        if code is not None:
            self.code = code
        self.status = status
        self.delay = delay
        self.rate_limits = rate_limits or []
        #: ``x-request-id`` / ``x-oai-request-id`` of the failed HTTP response, if any.
        self.request_id = request_id


class ProtocolError(AgentError):
    """The server sent something that violates the protocol (e.g. malformed completion)."""

    retryable = True


class StreamError(AgentError):
    """The stream broke or ended early: retryable."""

    retryable = True


class IdleTimeout(StreamError):
    code = "idle_timeout"


class InvalidRequest(AgentError):
    code = "invalid_request"


class ContextWindowExceeded(AgentError):
    code = "context_length_exceeded"


class QuotaExceeded(AgentError):
    code = "insufficient_quota"


class UsageNotIncluded(AgentError):
    code = "usage_not_included"


class ServerOverloaded(AgentError):
    code = "server_is_overloaded"


class UsageLimitReached(AgentError):
    code = "usage_limit_reached"


class AuthenticationError(AgentError):
    code = "unauthorized"


class UpgradeRequired(AgentError):
    """WebSocket handshake answered 426: the session falls back to HTTP."""

    code = "upgrade_required"


QUOTA_MESSAGE = "Quota exceeded. Check your plan and billing details."
USAGE_NOT_INCLUDED_MESSAGE = (
    "To use this model with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus."
)
OVERLOADED_MESSAGE = "Selected model is at capacity. Please try a different model."
HIGH_DEMAND_MESSAGE = "We're currently experiencing high demand, which may cause temporary errors."


def redact(error: AgentError, secret: str | None) -> AgentError:
    """Remove ``secret`` (the API key) from an error a server may have echoed it into."""
    if secret and secret in error.message:
        error.message = error.message.replace(secret, "***")
        error.args = (error.message,)
    return error


def from_failed_response(error: Any) -> AgentError:
    """Map ``response.failed.response.error`` (or an in-stream ``error``) to an error (§3.5)."""
    if error is None:
        return StreamError("response.failed event received")
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or ""
    if code == "context_length_exceeded":
        return ContextWindowExceeded(message or "Your input exceeds the context window of this model.")
    if code == "insufficient_quota":
        return QuotaExceeded(QUOTA_MESSAGE)
    if code == "usage_not_included":
        return UsageNotIncluded(USAGE_NOT_INCLUDED_MESSAGE)
    if code == "invalid_prompt":
        return InvalidRequest(message or "Invalid request.", code="invalid_prompt")
    if code in ("server_is_overloaded", "slow_down"):
        return ServerOverloaded(OVERLOADED_MESSAGE, code=code)
    delay = parse_retry_delay(message) if code == "rate_limit_exceeded" else None
    return _bounded(StreamError(message or "response.failed event received", code=code, delay=delay))


def _bounded(error: StreamError) -> AgentError:
    """A retryable error whose suggested delay is too long to wait for is surfaced at once."""
    if error.delay is None or error.delay <= MAX_RETRY_DELAY:
        return error
    return AgentError(
        f"{error.message} (retry after {error.delay:.0f}s)",
        status=error.status,
        code=error.code,
        request_id=error.request_id,
    )


def incomplete_error(reason: str | None) -> StreamError:
    return StreamError(
        f"Incomplete response returned, reason: {reason or 'unknown'}",
        code="incomplete",
        retryable=False,
    )


def format_reset_time(resets_at: float | None) -> str | None:
    if not resets_at:
        return None
    when = _dt.datetime.fromtimestamp(resets_at).astimezone()
    today = _dt.datetime.now().astimezone().date()
    if when.date() == today:
        return when.strftime("%H:%M")
    return when.strftime("%H:%M on %d %b")


def usage_limit_message(
    *,
    limit_name: str | None,
    plan_type: str | None,
    resets_at: float | None,
    promo: str | None = None,
) -> str:
    """The usage-limit text of spec §3.7."""
    when = format_reset_time(resets_at)
    retry = f"try again at {when}." if when else "try again later."
    if limit_name and limit_name.lower() != "codex":
        return f"You've hit your usage limit for {limit_name}. Switch to another model now, or {retry}"
    if promo:
        return f"You've hit your usage limit. {promo}, or {retry}"
    plan = (plan_type or "").lower()
    if plan == "plus":
        return (
            "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro) or "
            f"check your usage at https://chatgpt.com/codex/settings/usage, or {retry}"
        )
    if plan in ("team", "business"):
        return f"You've hit your usage limit. To get more access now, send a request to your admin, or {retry}"
    if plan in ("free", "go"):
        return f"You've hit your usage limit. Upgrade to Plus to continue, or {retry}"
    if plan == "pro":
        return f"You've hit your usage limit. Purchase more credits to continue, or {retry}"
    return f"You've hit your usage limit. {retry[0].upper()}{retry[1:]}"


def retry_limit_exceeded(error: AgentError) -> AgentError:
    """The error a turn ends with once retries of a plain 429 are used up (spec §3.5)."""
    message = "exceeded retry limit, last status: 429 Too Many Requests"
    if error.request_id:
        message += f", request id: {error.request_id}"
    return AgentError(message, status=429, code="rate_limit_exceeded", request_id=error.request_id)


def from_http_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | dict[str, Any] | None,
    *,
    url: str = "",
) -> AgentError:
    """Map an HTTP error status (or a WebSocket wrapped error) to an error (spec §3.5)."""
    error, text = _error_body(body)
    etype = (error or {}).get("type")
    ecode = (error or {}).get("code")
    emessage = (error or {}).get("message") or ""
    lower = {k.lower(): str(v) for k, v in headers.items()}
    request_id = lower.get("x-request-id") or lower.get("x-oai-request-id")

    if status == 400:
        if "invalid image" in text.lower() or "image data" in text.lower():
            return InvalidRequest(
                "The image in the conversation could not be processed; remove it and try again.",
                status=400,
            )
        if ecode == "context_length_exceeded":
            return ContextWindowExceeded(emessage or text, status=400)
        if ecode == "previous_response_not_found":
            return StreamError(emessage or text, code=ecode, status=400)
        if ecode == "websocket_connection_limit_reached":
            return StreamError(
                emessage
                or "Responses websocket connection limit reached (60 minutes). "
                "Create a new websocket connection to continue.",
                code=ecode,
                status=400,
            )
        return InvalidRequest(emessage or text or "Invalid request.", status=400, code=ecode)
    if status == 401:
        return AuthenticationError("Authentication failed (401): check your API key.", status=401)
    if status == 403:
        return InvalidRequest(emessage or "Permission denied (403).", status=403, code=ecode)
    if status == 404:
        return InvalidRequest(
            emessage or f"Not found (404): check the base URL and model. {url}".strip(),
            status=404,
            code=ecode,
        )
    if status == 426:
        return UpgradeRequired("WebSocket upgrade refused (426).", status=426)
    if status == 429:
        if etype == "usage_limit_reached":
            snapshots = parse_all_rate_limits(lower)
            active = (lower.get("x-codex-active-limit") or "codex").strip().lower().replace("-", "_")
            chosen = next((s for s in snapshots if s.limit_id == active), None)
            resets = (error or {}).get("resets_at")
            if resets is None and chosen and chosen.primary:
                resets = chosen.primary.resets_at
            message = usage_limit_message(
                limit_name=chosen.limit_name if chosen else None,
                plan_type=(error or {}).get("plan_type"),
                resets_at=resets,
                promo=lower.get("x-codex-promo-message"),
            )
            return UsageLimitReached(message, status=429, rate_limits=snapshots)
        if etype == "usage_not_included":
            return UsageNotIncluded(USAGE_NOT_INCLUDED_MESSAGE, status=429)
        if etype == "insufficient_quota" or ecode == "insufficient_quota":
            return QuotaExceeded(QUOTA_MESSAGE, status=429)
        delay = retry_after_from_headers(lower)
        if delay is None:
            delay = parse_retry_delay(emessage)
        message = emessage or "Rate limit reached (429 Too Many Requests)."
        if delay is not None and delay > MAX_RETRY_DELAY:
            return AgentError(
                f"{message} (retry after {delay:.0f}s)", status=429, code="rate_limit_exceeded", request_id=request_id
            )
        return StreamError(message, status=429, code="rate_limit_exceeded", delay=delay, request_id=request_id)
    if status == 500:
        return _bounded(StreamError(HIGH_DEMAND_MESSAGE, status=500, delay=retry_after_from_headers(lower)))
    if status == 503 and ecode in ("server_is_overloaded", "slow_down"):
        return ServerOverloaded(OVERLOADED_MESSAGE, status=503, code=ecode)
    detail = emessage or text[:300]
    message = f"Unexpected status {status}: {detail}".rstrip(": ")
    facts = [f"url: {url}"] if url else []
    if lower.get("cf-ray"):
        facts.append(f"cf-ray: {lower['cf-ray']}")
    if request_id:
        facts.append(f"request id: {request_id}")
    if facts:
        message += f" ({', '.join(facts)})"
    return _bounded(StreamError(message, status=status, delay=retry_after_from_headers(lower), request_id=request_id))


def _error_body(body: bytes | str | dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    import json

    if body is None:
        return None, ""
    if isinstance(body, dict):
        data: Any = body
        text = json.dumps(body)
    else:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            return None, text
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return err, text
        if isinstance(data.get("message"), str):
            return data, text
    return None, text
