"""Request building and the web-search policy (spec "Common data shapes", §9).

The body's keys follow the spec's order; ``prompt_cache_key`` is the conversation id. Hosted web
search is ``cached`` on OpenAI by default and off elsewhere (Azure needs enablement on the
resource); a provider that rejects the tool (``web_search_rejected``) gets the request again
without it, once, and the mode stays off until the user sets it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..config import Provider
from ..protocol import errors as E
from ..session import ModelSession, TurnContext
from ..tools.base import FunctionTool
from .accumulator import Sampling, TurnAccumulator
from .images import rejects_images, strip_images

EventCallback = Callable[[ev.AgentEvent], None]


class RequestsMixin:
    """Part of ``Agent``: request bodies, the web-search mode and one sampled response."""

    tools: dict[str, FunctionTool]
    history: list[dict[str, Any]]
    web_search: str
    reasoning_effort: str | None
    reasoning_summary: str | None
    instructions: str
    parallel_tool_calls: bool
    max_output_tokens: int | None
    _web_search_rejected: bool
    #: The server rejected image input (issue 13): requests carry text instead of images.
    _images_rejected: bool = False
    _azure_live_noticed: bool
    _last_server_model: str | None
    effective_instructions: Callable[[], str]

    # Provided by ``Agent`` (annotations only: nothing here shadows them).
    if TYPE_CHECKING:  # properties of Agent

        @property
        def model_name(self) -> str: ...

        @property
        def session(self) -> ModelSession: ...

    def web_search_mode(self, provider: Provider) -> str:
        """``live``, ``cached`` or ``disabled`` for requests to ``provider``.

        An explicit mode wins. By default OpenAI gets ``cached``; Azure (spec §9 detection, by
        provider name or base URL) and other servers get ``disabled``: on Azure web search needs
        separate enablement on the resource, so it is off unless the user turns it on. A provider
        that rejected the tool in this session gets ``disabled`` until the mode is set again.
        """
        if self._web_search_rejected:
            return "disabled"
        if self.web_search != "default":
            return self.web_search
        if provider.is_azure:
            return "disabled"
        return "cached" if provider.name == "openai" else "disabled"

    def tool_specs(self, provider: Provider) -> list[dict[str, Any]]:
        specs = [t.spec() for t in self.tools.values()]
        mode = self.web_search_mode(provider)
        if mode != "disabled":
            specs.append({"type": "web_search", "external_web_access": mode == "live"})
        return specs

    def _web_search_notices(self, provider: Provider, emit: EventCallback, turn_id: str) -> None:
        if provider.is_azure and self.web_search_mode(provider) == "live" and not self._azure_live_noticed:
            self._azure_live_noticed = True
            emit(
                ev.Notice(
                    level="info",
                    message=(
                        "Web search on Azure OpenAI must be enabled for the resource, and Azure ignores "
                        "live access (external_web_access): results may come from its cache."
                    ),
                    turn_id=turn_id,
                )
            )

    async def _sample_dropping_rejected_web_search(
        self, provider: Provider, ctx: TurnContext, acc: TurnAccumulator
    ) -> Sampling:
        """``_sample``; when the provider rejects the hosted web_search tool, say so and retry without it."""
        body = self._build_body(provider)
        try:
            return await self._sample(body, ctx, acc)
        except E.AgentError as error:
            if rejects_images(error, body):  # issue 13: a server without image input gets text only
                self._images_rejected = True
                acc.emit(ev.Notice(level="warning", message=_images_notice(provider, error), turn_id=ctx.turn_id))
                return await self._sample(self._build_body(provider), ctx, acc)
            if not _rejects_web_search(error, body):
                raise
            self._web_search_rejected = True
            acc.emit(
                ev.Notice(
                    level="warning",
                    message=(
                        f"{provider.describe()} rejected the web_search tool: {error.message.rstrip('.')}. "
                        "Web search is off for this session; the request was sent again without it. "
                        "Turn it back on with %agent websearch cached|live."
                    ),
                    turn_id=ctx.turn_id,
                )
            )
            return await self._sample(self._build_body(provider), ctx, acc)

    def _build_body(self, provider: Provider) -> dict[str, Any]:
        """The request body, keys in the order of spec "Common data shapes"."""
        reasoning = None
        if self.reasoning_effort:
            reasoning = {"effort": self.reasoning_effort}
            if self.reasoning_summary:
                reasoning["summary"] = self.reasoning_summary
        body: dict[str, Any] = {
            "model": self.model_name,
            "instructions": self.effective_instructions(),
            "input": strip_images(self.history) if self._images_rejected else list(self.history),
            "tools": self.tool_specs(provider),
            "tool_choice": "auto",
            "parallel_tool_calls": self.parallel_tool_calls,
            "reasoning": reasoning,
            "store": provider.is_azure,
            "stream": True,
        }
        if reasoning is not None:
            body["include"] = ["reasoning.encrypted_content"]
        body["prompt_cache_key"] = self.session.conversation_id
        if self.max_output_tokens:
            body["max_output_tokens"] = self.max_output_tokens
        return body

    def _prewarm_body(self, provider: Provider) -> dict[str, Any]:
        """The warm-up request (spec §1): this conversation's settings, no input."""
        body = self._build_body(provider)
        body["input"] = []
        return body

    async def _sample(self, body: dict[str, Any], ctx: TurnContext, acc: TurnAccumulator) -> Sampling:
        """One model request (with its retries), folded into agent events by the accumulator."""
        sampling = acc.new_request()
        handle = acc.handle
        try:
            async for event in self.session.stream(body, ctx):
                handle(event)
        finally:
            self._last_server_model = acc.last_server_model
            ctx.reroute_warned = acc.reroute_warned
        return sampling


def _images_notice(provider: Provider, error: E.AgentError) -> str:
    return (
        f"{provider.describe()} rejected image input: {error.message.rstrip('.')}. The request was sent again "
        "with images replaced by text; images stay out of this session's requests."
    )


def _rejects_web_search(error: E.AgentError, body: dict[str, Any]) -> bool:
    """A non-retryable request error that names the hosted web_search tool we sent."""
    sent = any(t.get("type") == "web_search" for t in body.get("tools") or [])
    text = (error.message or "").lower()
    return (
        sent
        and not error.retryable
        and error.status in (400, 404, 422)
        and ("web_search" in text or "web search" in text)
    )
