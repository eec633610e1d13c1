"""The Agent: conversation history, the turn loop, tool follow-ups, approvals and cancel.

Turns run on the agent loop (``loop.py``), whatever thread or loop asks for them. Wire events
from the session become agent events (``events.py``) exactly once, here. A failed or cancelled
turn keeps the user's message and leaves a history the next request accepts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from traitlets import Bool, Dict, Enum, Float, Int, Unicode, observe
from traitlets.config import Configurable

from . import events as ev
from .config import Provider, Secret, resolve_provider
from .loop import AgentLoop, get_agent_loop
from .project import ProjectMixin
from .protocol import errors as E
from .protocol.ratelimits import snapshot_from_codex_event
from .protocol.responses import (
    CodexRateLimitsEvent,
    FunctionCallItem,
    MessageItem,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningItem,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    RefusalDelta,
    ResponseCompleted,
    ResponseDone,
    TimingEvent,
    WebSearchCallItem,
)
from .session import ModelSession, SessionNotice, SessionOptions, SessionRetry, TurnContext
from .tools.base import FunctionTool, as_tool
from .tools.mcp import output_text
from .transport.base import EventServerModel, ResponseHeaders

log = logging.getLogger("jupyter_agent")

DEFAULT_INSTRUCTIONS = (
    "You are an assistant working inside a Jupyter notebook. Answer concisely and accurately. "
    "Use Markdown; put code in fenced blocks."
)
INTERRUPTED_MARK = "[interrupted]"
EventCallback = Callable[[ev.AgentEvent], None]


@dataclass
class Turn:
    """The outcome of one user turn."""

    id: str
    prompt: str
    status: str = "running"  # "completed", "failed", "interrupted"
    text: str = ""
    events: list[ev.AgentEvent] = field(default_factory=list)
    usage: ev.Usage | None = None
    error: str | None = None
    telemetry: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnHandle:
    """A turn started with ``Agent.start``: a concurrent future plus cancel."""

    turn_id: str
    future: concurrent.futures.Future[Turn]
    _agent: "Agent"

    def cancel(self) -> None:
        self._agent.cancel(self.turn_id)

    def result(self, timeout: float | None = None) -> Turn:
        return self.future.result(timeout)


@dataclass
class _Sampling:
    """What one model request produced."""

    items: list[Any] = field(default_factory=list)
    usage: ev.Usage | None = None
    response_id: str | None = None
    #: Streamed text pieces per message item (joined once: no quadratic concatenation).
    partial_text: dict[str, list[str]] = field(default_factory=dict)
    phases: dict[str, str | None] = field(default_factory=dict)

    def reset(self) -> None:
        self.items.clear()
        self.partial_text.clear()
        self.phases.clear()
        self.usage = None
        self.response_id = None


class Agent(ProjectMixin, Configurable):
    """A model agent: one conversation, any number of turns, from cells, panel or Python."""

    model = Unicode("", help="Model (or Azure deployment) name; empty = the provider's default.").tag(config=True)
    base_url = Unicode(None, allow_none=True, help="Responses API base URL, e.g. https://api.openai.com/v1").tag(
        config=True
    )
    provider = Unicode(
        None, allow_none=True, help="openai | azure | compatible | local; empty = from the environment."
    ).tag(config=True)
    transport = Enum(["auto", "sse", "websocket"], "auto", help="Wire transport.").tag(config=True)
    instructions = Unicode(DEFAULT_INSTRUCTIONS, help="System instructions sent with every request.").tag(config=True)
    reasoning_effort = Unicode(None, allow_none=True, help="Reasoning effort (minimal/low/medium/high) or empty.").tag(
        config=True
    )
    reasoning_summary = Unicode("auto", allow_none=True, help="Reasoning summary mode, or empty for none.").tag(
        config=True
    )
    web_search = Enum(
        ["live", "cached", "disabled", "default"],
        "default",
        help="Hosted web search: live, cached, disabled; default = cached on OpenAI, off elsewhere (Azure needs opt-in).",
    ).tag(config=True)
    max_output_tokens = Int(None, allow_none=True, help="Cap on output tokens per request.").tag(config=True)
    max_retries = Int(5, help="Retries of a failed request before the turn fails.").tag(config=True)
    idle_timeout = Float(300.0, help="Seconds without a byte before a stream counts as dead.").tag(config=True)
    max_tool_rounds = Int(25, help="Tool follow-up requests allowed per turn.").tag(config=True)
    parallel_tool_calls = Bool(True, help="Let the model request several tool calls at once.").tag(config=True)
    realtime_url = Unicode(None, allow_none=True, help="Realtime WebSocket URL (or base URL) for %agent voice.").tag(
        config=True
    )
    realtime_dialect = Enum(["openai", "backend"], None, allow_none=True, help="Realtime protocol dialect.").tag(
        config=True
    )
    realtime_model = Unicode(None, allow_none=True, help="Realtime model, e.g. gpt-realtime.").tag(config=True)
    tool_approval = Dict(
        value_trait=Enum(["ask", "auto", "never"]),
        key_trait=Unicode(),
        help='Approval policy per tool name, e.g. {"run_python": "auto"}; overrides the tool\'s own default.',
    ).tag(config=True)
    kernel_tools = Bool(True, help="In a kernel: give the agent run_python, list_variables and describe_variable.").tag(
        config=True
    )
    persist = Bool(True, help="In a kernel: save the conversation as it happens (for %agent resume).").tag(config=True)
    auto_resume = Bool(
        False,
        help="In a kernel: continue this notebook's last saved conversation when the extension loads.",
    ).tag(config=True)
    history_dir = Unicode(
        None,
        allow_none=True,
        help="Where conversations are saved; empty = $JUPYTER_AGENT_HISTORY_DIR or <jupyter data dir>/agent/conversations.",
    ).tag(config=True)

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        transport: str | None = None,
        *,
        provider: str | Provider | None = None,
        tools: Iterable[Any] = (),
        loop: AgentLoop | None = None,
        prewarm: bool = True,
        **kwargs: Any,
    ) -> None:
        if model is not None:
            kwargs["model"] = model
        if base_url is not None:
            kwargs["base_url"] = base_url
        if transport is not None:
            kwargs["transport"] = transport
        if isinstance(provider, str):
            kwargs["provider"] = provider
        super().__init__(**kwargs)
        self._api_key = Secret(api_key) if api_key else None
        self._provider_obj: Provider | None = provider if isinstance(provider, Provider) else None
        # Resolution happens on the kernel thread (magics) and the agent thread (prewarm, turns).
        self._provider_lock = threading.RLock()
        self._loop = loop or get_agent_loop()
        self._session: ModelSession | None = None
        self.tools: dict[str, FunctionTool] = {}
        for tool in tools:
            self.add_tool(tool)
        self.history: list[dict[str, Any]] = []
        self.turns: list[Turn] = []
        self._subscribers: list[EventCallback] = []
        self._turn_lock: asyncio.Lock | None = None
        self._tasks: dict[str, asyncio.Task[Turn]] = {}
        self._approvals: dict[str, asyncio.Future[str]] = {}
        self._notified_local = False
        self._last_server_model: str | None = None
        #: The conversation (thread) id: ``prompt_cache_key``, ``session_id`` and the store's file name.
        self.conversation_id = str(uuid.uuid4())
        #: Bumped whenever ``history`` is replaced wholesale (reset, resume): frontends re-read it.
        self.history_version = 0
        self._web_search_rejected = False
        self._azure_live_noticed = False
        #: Persistence (``store.ConversationStore``), attached in a kernel by ``attach_store``.
        self.store: Any = None
        #: Hook for tools that must run on the kernel thread (set by the IPython extension).
        self.kernel_runner: Callable[[Callable[[], Any]], Any] | None = None
        #: Hook called with each history item as it is appended (persistence).
        self.on_history_append: Callable[[dict[str, Any]], None] | None = None
        self._init_project()  # MCP servers and AGENTS.md (project.py)
        self._prewarm = prewarm
        #: Set while per-cell options are applied and restored: those switches do not warm up.
        self.prewarm_paused = False
        if prewarm:
            self._loop.call_soon(self._maybe_prewarm)

    def _maybe_prewarm(self) -> None:
        """Let a session that supports it (WebSocket) warm up before the first turn (spec §1)."""
        try:
            provider = self.resolved_provider()
            if provider.name == "local":
                return
            session = self.session
            start = getattr(session, "start_prewarm", None)
            if start is not None:
                body = self._build_body(provider)
                body["input"] = []
                start(body)
        except Exception:  # noqa: BLE001 - a failed warm-up costs nothing but the warm-up
            log.debug("prewarm skipped", exc_info=True)

    # -- configuration --------------------------------------------------------------------

    @observe("base_url", "provider", "transport", "max_retries", "idle_timeout")
    def _connection_changed(self, change: dict[str, Any]) -> None:
        lock = getattr(self, "_provider_lock", None)
        if lock is None:  # during __init__
            return
        with lock:
            if change["name"] in ("base_url", "provider"):
                self._provider_obj = None
            old, self._session = self._session, None
        if old is not None:
            self._loop.submit(old.aclose())
        if getattr(self, "_prewarm", False) and not getattr(self, "prewarm_paused", False) and not self._tasks:
            # A new connection (``%agent connect``, ``%agent transport``) warms up like the first.
            self._loop.call_soon(self._maybe_prewarm)

    def resolved_provider(self) -> Provider:
        with self._provider_lock:
            if self._provider_obj is None:
                self._provider_obj = resolve_provider(
                    base_url=self.base_url or None,
                    api_key=self._api_key.get() if self._api_key else None,
                    provider=self.provider or None,
                )
            return self._provider_obj

    def set_api_key(self, api_key: str | None) -> None:
        """Use another API key from the next request on."""
        with self._provider_lock:
            self._api_key = Secret(api_key) if api_key else None
            self._provider_obj = None
            old, self._session = self._session, None
        if old is not None:
            self._loop.submit(old.aclose())

    @property
    def session(self) -> ModelSession:
        with self._provider_lock:
            if self._session is None:
                options = SessionOptions(max_retries=self.max_retries, idle_timeout=self.idle_timeout)
                self._session = self._make_session(self.resolved_provider(), options)
            return self._session

    def _make_session(self, provider: Provider, options: SessionOptions) -> ModelSession:
        factory = _session_factory(self.transport)
        session = factory(provider, options=options)
        session.conversation_id = self.conversation_id
        return session

    @property
    def model_name(self) -> str:
        return self.model or self.resolved_provider().default_model

    @property
    def provider_name(self) -> str:
        return self.resolved_provider().name

    @property
    def rate_limits(self) -> dict[str, ev.RateLimitSnapshot]:
        return dict(self._session.rate_limits) if self._session else {}

    def add_tool(self, tool: Any, *, approval: str | None = None) -> FunctionTool:
        """Register a Python function (schema from its type hints) or a ``FunctionTool``."""
        t = as_tool(tool)
        if approval is not None:
            if approval not in ("ask", "auto", "never"):
                raise ValueError(f"approval must be ask, auto or never, not {approval!r}")
            t.approval = approval  # type: ignore[assignment]
        self.tools[t.name] = t
        return t

    def tool(self, fn: Callable[..., Any] | None = None, *, approval: str = "auto", name: str | None = None) -> Any:
        """Decorator: ``@agent.tool`` or ``@agent.tool(approval="ask")`` registers ``fn`` as a tool."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add_tool(FunctionTool.from_callable(f, name=name, approval=approval))  # type: ignore[arg-type]
            return f

        return register(fn) if fn is not None else register

    def approval_policy(self, name: str) -> str:
        """The effective policy of tool ``name``: ``tool_approval`` config first, then the tool's own."""
        configured = self.tool_approval.get(name)
        if configured:
            return configured
        tool = self.tools.get(name)
        return tool.approval if tool is not None else "never"

    def set_approval(self, name: str | None, policy: str) -> None:
        """Set the policy of one tool (or, with ``None``, of every tool that asks or runs code)."""
        if policy not in ("ask", "auto", "never"):
            raise ValueError(f"approval must be ask, auto or never, not {policy!r}")
        names = [name] if name else [n for n, t in self.tools.items() if t.runs_code or t.approval == "ask"]
        merged = dict(self.tool_approval)
        for n in names:
            if n not in self.tools:
                raise KeyError(f"no tool named {n!r}")
            merged[n] = policy
        self.tool_approval = merged

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of every turn (on the agent thread)."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: ev.AgentEvent) -> None:
        """Deliver an event that belongs to no text turn (e.g. voice) to every subscriber."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # noqa: BLE001
                log.exception("agent event callback failed")

    def add_history_message(self, role: str, text: str) -> None:
        """Append a user or assistant message (e.g. a voice transcript) to the conversation."""
        part = "output_text" if role == "assistant" else "input_text"
        self._append_history({"type": "message", "role": role, "content": [{"type": part, "text": text}]})

    @property
    def agent_loop(self) -> AgentLoop:
        return self._loop

    def _emit(self, turn: Turn, sink: EventCallback | None, event: ev.AgentEvent) -> None:
        turn.events.append(event)
        for callback in (sink, *self._subscribers):
            if callback is None:
                continue
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a broken frontend must not break the turn
                log.exception("agent event callback failed")

    # -- public turn API ------------------------------------------------------------------

    async def ask(
        self, prompt: str, *, source: str = "python", sink: EventCallback | None = None, interactive: bool = False
    ) -> Turn:
        """Run one user turn to completion (tool follow-ups included) and return it."""
        turn_id = uuid.uuid4().hex
        return await self._loop.run(self._turn_entry(turn_id, prompt, source, sink, interactive))

    def start(
        self, prompt: str, *, source: str = "python", sink: EventCallback | None = None, interactive: bool = True
    ) -> TurnHandle:
        """Start a turn on the agent loop and return at once."""
        turn_id = uuid.uuid4().hex
        future = self._loop.submit(self._turn_entry(turn_id, prompt, source, sink, interactive))
        return TurnHandle(turn_id, future, self)

    def cancel(self, turn_id: str | None = None) -> None:
        """Cancel the running turn (or the given one); thread-safe."""

        def _cancel() -> None:
            for tid, task in list(self._tasks.items()):
                if turn_id is None or tid == turn_id:
                    task.cancel()

        self._loop.call_soon(_cancel)

    def resolve_approval(self, call_id: str, decision: str) -> None:
        """Answer a pending approval: ``approve``, ``approve_always`` or ``deny``; thread-safe."""

        def _resolve() -> None:
            fut = self._approvals.get(call_id)
            if fut is not None and not fut.done():
                fut.set_result(decision)

        self._loop.call_soon(_resolve)

    def reset(self) -> None:
        """Start a new conversation (history cleared, new conversation id; the old one stays saved)."""
        self._replace_history([], str(uuid.uuid4()))

    def _replace_history(self, items: list[dict[str, Any]], conversation_id: str) -> None:
        with self._provider_lock:
            self.history = list(items)
            self.turns = []
            self.conversation_id = conversation_id
            self.history_version += 1
            old, self._session = self._session, None
        if old is not None:
            self._loop.submit(old.aclose())

    def load_history(self, items: list[dict[str, Any]], conversation_id: str | None = None) -> None:
        """Continue a saved conversation: its items become the history, replayed on the next request.

        Function calls without an output (the kernel died while a tool ran) get one, so the next
        request is valid; those outputs are saved too.
        """
        from .store import dangling_calls

        self._replace_history(items, conversation_id or str(uuid.uuid4()))
        for call_id in dangling_calls(self.history):
            self._append_history(
                {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": "Tool result lost: the kernel stopped before the tool finished.",
                }
            )

    def secret_values(self) -> list[str]:
        """The API keys in use (explicit or from the environment), for redaction; never log these."""
        values = [self._api_key.get()] if self._api_key else []
        provider = self._provider_obj
        if provider is not None and provider.api_key:
            values.append(provider.api_key.get())
        return values + self.mcp.secret_values()

    def attach_store(self, store: Any) -> None:
        """Save every history item to ``store`` (a ``store.ConversationStore``) as it is appended."""
        self.store = store
        self.on_history_append = lambda item: store.append(self.conversation_id, item)

    def resume(self, conversation_id: str | None = None) -> Any:
        """Load the most recent saved conversation of this notebook (or the given one).

        Returns the ``StoredConversation`` (None when there is nothing to resume). Raises
        ``RuntimeError`` when no store is attached or a turn is running.
        """
        if self.store is None:
            raise RuntimeError("conversations are not saved here (no store attached; see Agent.persist)")
        if self._tasks:
            raise RuntimeError("a turn is running; stop it before resuming another conversation")
        if conversation_id:
            conv = self.store.load(conversation_id)
        else:
            conv = self.store.latest(exclude=self.conversation_id if self.history else None)
        if conv is None:
            return None
        self.load_history(conv.items, conv.id)
        return conv

    def transcript(self) -> list[dict[str, Any]]:
        """The conversation as display messages: ``{"role", "text", "phase"}``."""
        out: list[dict[str, Any]] = []
        for item in self.history:
            kind = item.get("type", "message")
            if kind == "message":
                text = _content_text(item.get("content"))
                role = item.get("role", "user")
                if role == "user" and text.startswith("Warning: "):
                    role = "warning"
                out.append({"role": role, "text": text, "phase": item.get("phase")})
            elif kind == "function_call":
                out.append({"role": "tool", "text": f"{item.get('name')}({item.get('arguments', '')})", "phase": None})
            elif kind == "web_search_call":
                parsed = WebSearchCallItem.model_validate(item)
                out.append({"role": "tool", "text": f"Searched {parsed.display_detail()[1]}".rstrip(), "phase": None})
        return out

    # -- the turn loop --------------------------------------------------------------------

    async def _turn_entry(
        self, turn_id: str, prompt: str, source: str, sink: EventCallback | None, interactive: bool
    ) -> Turn:
        if self._turn_lock is None:
            self._turn_lock = asyncio.Lock()
        task = asyncio.current_task()
        assert task is not None
        self._tasks[turn_id] = task  # cancellable while waiting for the lock too
        try:
            async with self._turn_lock:
                return await self._run_turn(turn_id, prompt, source, sink, interactive)
        finally:
            self._tasks.pop(turn_id, None)

    def _append_history(self, item: dict[str, Any]) -> None:
        self.history.append(item)
        if self.on_history_append is not None:
            try:
                self.on_history_append(item)
            except Exception:  # noqa: BLE001
                log.exception("history persistence failed")

    async def _run_turn(
        self, turn_id: str, prompt: str, source: str, sink: EventCallback | None, interactive: bool
    ) -> Turn:
        turn = Turn(id=turn_id, prompt=prompt)
        self.turns.append(turn)
        emit = lambda e: self._emit(turn, sink, e)  # noqa: E731
        provider = self.resolved_provider()
        ctx = TurnContext(turn_id=turn_id, requested_model=self.model_name, interactive=interactive)
        # Spec §7: "reasoning included" is per turn; the next response's headers set it again.
        self.session.reasoning_included = False
        emit(ev.TurnStarted(prompt=prompt, model=ctx.requested_model, source=source, turn_id=turn_id))
        self._append_history(_user_message(prompt))
        if provider.name == "local" and not self._notified_local:
            self._notified_local = True
            emit(
                ev.Notice(
                    level="info",
                    message=(
                        "Answered by the embedded local model (SmolLM2-135M-Instruct, small and offline). "
                        "For a real model set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT) "
                        "in the environment or a .env file, or run %agent connect --base-url URL."
                    ),
                    turn_id=turn_id,
                )
            )
        self._web_search_notices(provider, emit, turn_id)
        await self._mcp_tools(emit, turn_id)
        started = time.perf_counter()
        last: _Sampling | None = None
        pending_calls: list[FunctionCallItem] = []
        try:
            for _round in range(self.max_tool_rounds + 1):
                last = _Sampling()
                await self._sample_with_fallback(provider, ctx, turn, emit, started, last)
                keep_ids = provider.is_azure
                for item in last.items:
                    replay = _replay_item(item, keep_ids)
                    if replay is not None:
                        self._append_history(replay)
                calls = [i for i in last.items if isinstance(i, FunctionCallItem)]
                if not calls:
                    break
                pending_calls = calls
                await self._run_tools(calls, ctx, turn, emit)
                pending_calls = []
            else:
                raise E.AgentError(f"Stopped after {self.max_tool_rounds} tool rounds without a final answer.")
            turn.status = "completed"
            turn.text = _final_text(last.items if last else [])
        except asyncio.CancelledError:
            turn.status = "interrupted"
            self._close_dangling(pending_calls, "Cancelled by the user before the tool ran.")
            partial = _partial_answer(last)
            if partial:
                self._append_history(_assistant_message(f"{partial}\n\n{INTERRUPTED_MARK}"))
            turn.text = partial
            self._reject_approvals(ctx)
            emit(ev.TurnDone(status="interrupted", text=turn.text, turn_id=turn_id))
            raise
        except E.AgentError as error:
            turn.status = "failed"
            turn.error = error.message
            self._close_dangling(pending_calls, f"Tool not run: the turn failed ({error.message}).")
            for snap in error.rate_limits:
                if snap.primary or snap.secondary or snap.credits:
                    emit(ev.RateLimits(snapshot=self.session.update_rate_limits(snap), turn_id=turn_id))
            emit(ev.Error(message=error.message, retryable=False, code=error.code, turn_id=turn_id))
            if isinstance(error, E.AuthenticationError) and self._api_key is None:
                # Spec §3.5 "401 -> reload stored auth": the next turn reads the key from the environment / .env again.
                self.set_api_key(None)
        except Exception as error:  # noqa: BLE001 - never crash the kernel on a bug or bad data
            log.exception("turn failed")
            turn.status = "failed"
            turn.error = f"{type(error).__name__}: {error}"
            self._close_dangling(pending_calls, "Tool not run: internal error.")
            emit(ev.Error(message=f"Internal error: {turn.error}", turn_id=turn_id))
        turn.telemetry = ctx.metrics.summary()
        line = ctx.metrics.line()
        emit(ev.Telemetry(summary=turn.telemetry, line=line, turn_id=turn_id))
        if turn.status != "interrupted":
            emit(ev.TurnDone(status=turn.status, text=turn.text, turn_id=turn_id))
        return turn

    def _close_dangling(self, calls: list[FunctionCallItem], output: str) -> None:
        """Give every function call in history an output, so the next request is valid."""
        answered = {i.get("call_id") for i in self.history if i.get("type") == "function_call_output"}
        for call in calls:
            if call.call_id not in answered:
                self._append_history({"type": "function_call_output", "call_id": call.call_id, "output": output})

    def _reject_approvals(self, ctx: TurnContext) -> None:
        for fut in self._approvals.values():
            if not fut.done():
                fut.set_result("cancelled")

    # -- requests -------------------------------------------------------------------------

    @observe("web_search")
    def _web_search_changed(self, change: dict[str, Any]) -> None:
        self._web_search_rejected = False  # the user chose again: try what they asked for
        self._azure_live_noticed = False

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

    async def _sample_with_fallback(
        self, provider: Provider, ctx: TurnContext, turn: Turn, emit: EventCallback, started: float, result: _Sampling
    ) -> None:
        """``_sample``; when the provider rejects the hosted web_search tool, say so and retry without it."""
        body = self._build_body(provider)
        try:
            await self._sample(body, ctx, turn, emit, started, result)
        except E.AgentError as error:
            if not _rejects_web_search(error, body):
                raise
            self._web_search_rejected = True
            emit(
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
            result.reset()
            await self._sample(self._build_body(provider), ctx, turn, emit, started, result)

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
            "input": list(self.history),
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

    async def _sample(
        self, body: dict[str, Any], ctx: TurnContext, turn: Turn, emit: EventCallback, started: float, result: _Sampling
    ) -> None:
        """One model request (with its retries) turned into agent events, collected in ``result``."""
        session = self.session
        tid = ctx.turn_id
        async for event in session.stream(body, ctx):
            if isinstance(event, OutputTextDelta):
                if ctx.metrics.ttft_ms is None:
                    ctx.metrics.ttft_ms = (time.perf_counter() - started) * 1000.0
                item_id = event.item_id or ""
                result.partial_text.setdefault(item_id, []).append(event.delta)
                emit(ev.TextDelta(delta=event.delta, item_id=item_id, phase=result.phases.get(item_id), turn_id=tid))
            elif isinstance(event, ReasoningSummaryTextDelta):
                emit(
                    ev.ReasoningDelta(
                        delta=event.delta,
                        item_id=event.item_id or "",
                        kind="summary",
                        index=event.summary_index,
                        turn_id=tid,
                    )
                )
            elif isinstance(event, ReasoningTextDelta):
                emit(
                    ev.ReasoningDelta(
                        delta=event.delta,
                        item_id=event.item_id or "",
                        kind="content",
                        index=event.content_index,
                        turn_id=tid,
                    )
                )
            elif isinstance(event, RefusalDelta):
                emit(ev.TextDelta(delta=event.delta, item_id=event.item_id or "", turn_id=tid))
            elif isinstance(event, OutputItemAdded):
                item = event.item
                if isinstance(item, MessageItem):
                    result.phases[item.id or ""] = item.phase
                elif isinstance(item, WebSearchCallItem):
                    emit(ev.WebSearch(item_id=item.id or "", status=item.status or "in_progress", turn_id=tid))
            elif isinstance(event, OutputItemDone):
                item = event.item
                result.items.append(item)
                if isinstance(item, MessageItem):
                    emit(ev.MessageDone(text=item.text, item_id=item.id or "", phase=item.phase, turn_id=tid))
                elif isinstance(item, WebSearchCallItem):
                    action, detail, fields = item.display_detail() if item.action else ("other", "", {})
                    emit(
                        ev.WebSearch(
                            item_id=item.id or "",
                            status="completed" if item.status in (None, "completed") else item.status,
                            action=action,
                            detail=detail,
                            turn_id=tid,
                            **fields,
                        )
                    )
            elif isinstance(event, (ResponseCompleted, ResponseDone)):
                response = event.response
                result.response_id = response.id if response else None
                if response is not None and response.usage is not None:
                    u = response.usage
                    result.usage = ev.Usage(
                        input_tokens=u.input_tokens,
                        cached_input_tokens=(u.input_tokens_details.cached_tokens or 0)
                        if u.input_tokens_details
                        else 0,
                        output_tokens=u.output_tokens,
                        reasoning_output_tokens=(u.output_tokens_details.reasoning_tokens or 0)
                        if u.output_tokens_details
                        else 0,
                        total_tokens=u.total_tokens,
                    )
                    turn.usage = _add_usage(turn.usage, result.usage)
                    emit(ev.UsageEvent(usage=result.usage, turn_id=tid))
            elif isinstance(event, ResponseHeaders):
                if event.server_model:  # spec §3.2: ServerModel first, then rate limits
                    self._server_model(event.server_model, ctx, emit)
                for snap in event.rate_limits:
                    if snap.primary or snap.secondary or snap.credits:
                        emit(ev.RateLimits(snapshot=session.update_rate_limits(snap), turn_id=tid))
            elif isinstance(event, EventServerModel):
                self._server_model(event.model, ctx, emit)
            elif isinstance(event, CodexRateLimitsEvent):
                snap = snapshot_from_codex_event(event)
                if snap is not None:
                    emit(ev.RateLimits(snapshot=session.update_rate_limits(snap), turn_id=tid))
            elif isinstance(event, TimingEvent):
                ctx.metrics.record_timing(event.timing_metrics)
            elif isinstance(event, SessionRetry):
                result.reset()  # the failed attempt's output is void
                emit(
                    ev.Retry(
                        attempt=event.attempt,
                        max_attempts=event.max_attempts,
                        delay=event.delay,
                        reason=event.reason,
                        turn_id=tid,
                    )
                )
            elif isinstance(event, SessionNotice):
                emit(
                    ev.Notice(
                        level="warning" if event.level == "warning" else "info", message=event.message, turn_id=tid
                    )
                )

    def _server_model(self, model: str, ctx: TurnContext, emit: EventCallback) -> None:
        if model != self._last_server_model:
            self._last_server_model = model
            if self._session is not None:
                self._session.server_model = model
            emit(ev.ServerModel(model=model, turn_id=ctx.turn_id))
        requested = ctx.requested_model
        if not ctx.reroute_warned and requested and model.lower() != requested.lower():
            ctx.reroute_warned = True
            message = (
                f"The server answered with model {model} instead of the requested {requested}. "
                f"Answers in this turn come from {model}."
            )
            emit(ev.RerouteWarning(from_model=requested, to_model=model, message=message, turn_id=ctx.turn_id))
            self._append_history(_user_message(f"Warning: {message}"))

    # -- tools ----------------------------------------------------------------------------

    async def _run_tools(
        self, calls: list[FunctionCallItem], ctx: TurnContext, turn: Turn, emit: EventCallback
    ) -> None:
        results = await asyncio.gather(*(self._run_tool(call, ctx, emit) for call in calls))
        for call, (output, _is_error) in zip(calls, results):
            self._append_history({"type": "function_call_output", "call_id": call.call_id, "output": output})

    async def _run_tool(self, call: FunctionCallItem, ctx: TurnContext, emit: EventCallback) -> tuple[Any, bool]:
        tid = ctx.turn_id
        emit(ev.ToolCall(call_id=call.call_id, name=call.name, arguments=call.arguments, turn_id=tid))
        tool = self.tools.get(call.name)
        if tool is None:
            output, is_error = f"Unknown tool: {call.name}", True
        else:
            decision = await self._approve(tool, call, ctx, emit)
            if decision in ("approve", "approve_always", "auto"):
                t0 = time.perf_counter()
                try:
                    output, is_error = await tool.invoke(
                        call.arguments, run_sync=self._kernel_run_sync if tool.needs_kernel_thread else None
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - e.g. the kernel runner failed: tell the model
                    output, is_error = f"Error: {type(exc).__name__}: {exc}", True
                ctx.metrics.record_tool_call(time.perf_counter() - t0)
            elif decision == "never":
                output, is_error = f"Not run: the approval policy of {call.name} is 'never'.", True
            elif decision == "cancelled":
                output, is_error = "The user cancelled the turn before approving this call.", True
            elif decision == "unavailable":
                output, is_error = (
                    (
                        f"Denied: {call.name} needs the user's approval and this frontend cannot ask for it. "
                        "The user can allow it with `%agent approve auto` or approve it in a notebook cell."
                    ),
                    True,
                )
            else:
                output, is_error = f"The user denied the call to {call.name}.", True
        text = output_text(output)  # MCP outputs may be input_text/input_image parts
        emit(ev.ToolResult(call_id=call.call_id, name=call.name, output=text, is_error=is_error, turn_id=tid))
        return output, is_error

    async def _approve(self, tool: FunctionTool, call: FunctionCallItem, ctx: TurnContext, emit: EventCallback) -> str:
        policy = self.approval_policy(tool.name)
        if policy == "auto":
            return "auto"
        if policy == "never":
            return "never"
        if not ctx.interactive:
            return "unavailable"
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._approvals[call.call_id] = fut
        emit(ev.ApprovalRequest(call_id=call.call_id, name=call.name, arguments=call.arguments, turn_id=ctx.turn_id))
        try:
            decision = await fut
        finally:
            self._approvals.pop(call.call_id, None)
        if decision == "approve_always":
            tool.approval = "auto"
            if self.tool_approval.get(tool.name) == "ask":
                self.tool_approval = {**self.tool_approval, tool.name: "auto"}
        emit(ev.ApprovalResolved(call_id=call.call_id, decision=decision, turn_id=ctx.turn_id))
        return decision

    async def _kernel_run_sync(self, fn: Callable[[], Any]) -> Any:
        runner = self.kernel_runner
        if runner is None:
            return await asyncio.to_thread(fn)
        return await asyncio.wrap_future(runner(fn))


# --- helpers ------------------------------------------------------------------------------

_SESSION_FACTORIES: dict[str, Callable[..., ModelSession]] = {}


def register_session_factory(transport: str, factory: Callable[..., ModelSession]) -> None:
    """Let transports other than SSE (e.g. WebSocket) provide their own session class."""
    _SESSION_FACTORIES[transport] = factory


def _session_factory(transport: str) -> Callable[..., ModelSession]:
    return _SESSION_FACTORIES.get(transport, ModelSession)


def _register_websocket_sessions() -> None:
    from .ws_session import websocket_session_factory

    for mode in ("websocket", "auto"):
        _SESSION_FACTORIES.setdefault(mode, websocket_session_factory(mode))


_register_websocket_sessions()


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


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _assistant_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
    return ""


def _replay_item(item: Any, keep_ids: bool) -> dict[str, Any] | None:
    """An output item as it is sent back on later requests (None: not replayable)."""
    if isinstance(item, ReasoningItem) and not item.encrypted_content and not keep_ids:
        return None  # stateless replay needs the encrypted content
    data = item.to_input(keep_id=keep_ids)
    if data.get("type") == "message":
        data.pop("status", None)
    return data


def _final_text(items: list[Any]) -> str:
    messages = [i for i in items if isinstance(i, MessageItem) and i.role == "assistant"]
    finals = [m for m in messages if m.phase == "final_answer"]
    chosen = finals or [m for m in messages if m.phase != "commentary"] or messages
    return "\n\n".join(m.text for m in chosen if m.text)


def _partial_answer(sampling: _Sampling | None) -> str:
    if sampling is None:
        return ""
    done_ids = {i.id for i in sampling.items if isinstance(i, MessageItem)}
    return "".join("".join(t) for k, t in sampling.partial_text.items() if k not in done_ids)


def _add_usage(a: ev.Usage | None, b: ev.Usage) -> ev.Usage:
    if a is None:
        return b
    return ev.Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        cached_input_tokens=a.cached_input_tokens + b.cached_input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        reasoning_output_tokens=a.reasoning_output_tokens + b.reasoning_output_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )
