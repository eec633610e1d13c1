"""The ``Agent``: public API, configuration (traitlets), the session it talks through, pub/sub.

The other roles are mixed in from their own modules: the turn loop (``turns.py``), tools and
approvals (``tools.py``), history (``history.py``), request building and the web-search policy
(``requests.py``), MCP tool servers and AGENTS.md instructions (``project.py``); session events
become agent events in ``accumulator.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from .. import events as ev
from ..config import Provider, Secret, resolve_provider
from ..loop import AgentLoop, get_agent_loop
from ..session import ModelSession, SessionOptions, make_session
from ..tools.base import FunctionTool
from .compaction import CompactionMixin
from .context import ContextMixin
from .history import HistoryMixin
from .project import ProjectMixin
from .requests import RequestsMixin
from .tools import ToolsMixin
from .turns import Turn, TurnHandle, TurnsMixin

log = logging.getLogger("jupyter_agent")

DEFAULT_INSTRUCTIONS = (
    "You are an assistant working inside a Jupyter notebook. Answer concisely and accurately. "
    "Use Markdown; put code in fenced blocks."
)
EventCallback = Callable[[ev.AgentEvent], None]


@dataclass(frozen=True)
class SessionInfo:
    """``Agent.session_info()``: the transport in use (``sse`` or ``websocket``), why it fell back
    to HTTP (spec §2.7), the conversation id and the model the server last named (spec §4)."""

    conversation_id: str
    transport: str
    http_fallback_reason: str | None
    server_model: str | None


class Agent(
    TurnsMixin, ToolsMixin, HistoryMixin, RequestsMixin, CompactionMixin, ProjectMixin, ContextMixin, Configurable
):
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
    idle_timeout = Float(300.0, help="Seconds without an event before a stream counts as dead.").tag(config=True)
    turn_timeout = Float(
        None, allow_none=True, help="Optional limit in seconds on a whole turn's model requests and retries."
    ).tag(config=True)
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
        #: Changes refused during a turn and deferred until no turn runs (``after_turns``).
        self._after_turns: list[Callable[[], Any]] = []
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
        self._init_context()  # window, token totals, compaction (context.py)
        self._prewarm = prewarm
        #: False while ``temporary_options`` applies or restores a cell's options: no warm-up then.
        self._warm_on_change = True
        if prewarm:
            self.prewarm()

    def prewarm(self) -> None:
        """Warm the session's connection up before the next turn (spec §1); thread-safe, no-op over HTTP."""
        self._loop.call_soon(self._prewarm_now)

    def _prewarm_now(self) -> None:
        try:
            provider = self.resolved_provider()
            if provider.name == "local":  # the embedded model loads while the user types (issue 14)
                from ..providers.local import start_loading

                start_loading()
            session = self.session
            if session.supports_prewarm:
                session.start_prewarm(self._prewarm_body(provider))
        except Exception:  # a failed warm-up costs nothing but the warm-up
            log.debug("prewarm skipped", exc_info=True)

    @contextlib.contextmanager
    def temporary_options(self, **changes: Any) -> Iterator[None]:
        """Apply option values (e.g. one cell's ``--model``/``--transport``) and restore them after.

        A session replaced here is not warmed up: a one-cell switch is not worth a connection.
        A change that would cut a running turn raises ``TraitError`` with nothing changed; a
        restore refused for that reason (a panel turn started meanwhile) runs once the turns end.
        """
        saved: dict[str, Any] = {}
        self._warm_on_change = False
        try:
            for name, value in changes.items():
                saved[name] = getattr(self, name)
                setattr(self, name, value)
        except TraitError:
            with contextlib.suppress(TraitError):
                for name, value in saved.items():
                    setattr(self, name, value)
            raise
        finally:
            self._warm_on_change = True
        try:
            yield
        finally:
            self._warm_on_change = False
            try:
                for name, value in saved.items():
                    try:
                        setattr(self, name, value)
                    except TraitError:  # another turn (the panel) started meanwhile: restore when it ends
                        self.after_turns(functools.partial(setattr, self, name, value))
            finally:
                self._warm_on_change = True

    @validate("base_url", "provider", "transport", "max_retries", "idle_timeout")
    def _no_connection_change_mid_turn(self, proposal: Any) -> Any:
        """A new connection would cut a running turn (issue 15 item 10): refused until it ends."""
        name = proposal["trait"].name
        if getattr(self, "_tasks", None) and proposal["value"] != self._trait_values.get(name):
            raise TraitError(f"A turn is running: stop it (or let it finish) before changing {name}.")
        return proposal["value"]

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
        if self._prewarm and self._warm_on_change and not self._tasks:
            # A new connection (``%agent connect``, ``%agent transport``) warms up like the first.
            self.prewarm()

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
        """Use another API key from the next request on (refused while a turn runs)."""
        self._refuse_while_running("changing the API key")
        self._set_api_key(api_key)

    def _set_api_key(self, api_key: str | None) -> None:
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
        session = make_session(provider, self.transport, options=options)
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

    def update_rate_limits(self, snapshot: ev.RateLimitSnapshot) -> ev.RateLimitSnapshot:
        """Merge a snapshot from outside a turn (e.g. the usage endpoint) into the session's (spec §5.2)."""
        return self.session.update_rate_limits(snapshot)

    @property
    def busy(self) -> bool:
        """A turn is running or waiting for the one before it."""
        return bool(self._tasks)

    def session_info(self) -> SessionInfo | None:
        """What the current session knows (None before the first use): for status lines."""
        session = self._session
        if session is None:
            return None
        return SessionInfo(
            conversation_id=session.conversation_id,
            transport=session.active_transport,
            http_fallback_reason=session.fallback_reason,
            server_model=session.server_model,
        )

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
            except Exception:  # one broken subscriber must not starve the others
                log.exception("agent event callback failed")

    @property
    def agent_loop(self) -> AgentLoop:
        return self._loop

    async def ask(
        self,
        prompt: str,
        *,
        source: str = "python",
        sink: EventCallback | None = None,
        interactive: bool = False,
        title: str = "",
    ) -> Turn:
        """Run one user turn to completion (tool follow-ups included) and return it.

        ``title`` is what frontends show for a generated prompt (see ``TurnStarted.title``)."""
        turn_id = uuid.uuid4().hex
        return await self._loop.run(self._turn_entry(turn_id, prompt, source, sink, interactive, title))

    def start(
        self,
        prompt: str,
        *,
        source: str = "python",
        sink: EventCallback | None = None,
        interactive: bool = True,
        title: str = "",
    ) -> TurnHandle:
        """Start a turn on the agent loop and return at once."""
        turn_id = uuid.uuid4().hex
        future = self._loop.submit(self._turn_entry(turn_id, prompt, source, sink, interactive, title))
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

    def secret_values(self) -> list[str]:
        """The API keys in use (explicit or from the environment), for redaction; never log these."""
        values = [self._api_key.get()] if self._api_key else []
        provider = self._provider_obj
        if provider is not None and provider.api_key:
            values.append(provider.api_key.get())
        return values + self.mcp.secret_values()

    @observe("web_search")
    def _web_search_changed(self, change: dict[str, Any]) -> None:
        self._web_search_rejected = False  # the user chose again: try what they asked for
        self._azure_live_noticed = False
