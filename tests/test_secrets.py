"""Secrets: a canary API key must appear nowhere but in the Authorization / api-key header.

A hostile scripted server echoes the key it receives into everything it can: error bodies (400,
401, 500), the ``x-request-id`` header that error messages quote, the usage-limit promo header
that the usage-limit message quotes, ``response.failed`` and in-stream ``error`` messages, and
WebSocket handshake refusals and wrapped errors. Every provider path is driven through it
(OpenAI env, Azure env, explicit ``api_key``, ``set_api_key``, WebSocket), and then the key is
searched in: turn errors, every agent event (``to_dict``), the telemetry, the transcript and
history, repr/str of the agent, provider, session and config, logs captured at DEBUG (all
loggers: httpx, httpcore, websockets, jupyter_agent), the side-panel comm messages and the cell
renderer's output. Then every notebook in ``notebooks/`` runs in a real kernel (nbclient) with
canaries in ``OPENAI_API_KEY`` / ``AZURE_OPENAI_API_KEY`` and DEBUG logging to a file, plus a
notebook that uses ``%agent connect --api-key-env``; the saved notebooks (outputs and widget
state) and the kernel log are searched.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent.agent import Agent
from jupyter_agent.comm import PanelBridge
from jupyter_agent.config import resolve_provider
from jupyter_agent.loop import AgentLoop
from jupyter_agent.testing import RecordedRequest, Reply, ScriptedServer, WsConn, text_reply
from jupyter_agent.ui.transcript import TurnViewState

ROOT = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-" + secrets.token_hex(12)
AZURE_CANARY = "az-canary-" + secrets.token_hex(12)


def _key_of(req: RecordedRequest) -> str:
    auth = req.headers.get("authorization", "")
    return auth.removeprefix("Bearer ").strip() or req.headers.get("api-key", "") or "no-key-received"


def hostile_replies(key: str) -> list[Reply]:
    """One turn's worth of replies per entry, each echoing ``key`` somewhere the client reads."""

    def err(status: int, **kw: Any) -> Reply:
        return Reply(
            status=status,
            headers={"x-request-id": key, **kw.pop("headers", {})},
            body={"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request_error", **kw}},
        )

    return [
        err(400, code="invalid_api_key"),
        err(401),
        err(418),  # unexpected status: the message quotes the body and the request id
        err(500),
        err(
            429,
            headers={"x-codex-promo-message": f"promo {key}", "x-codex-primary-used-percent": "100"},
            type="usage_limit_reached",
        ),
        Reply(
            events=[
                {
                    "type": "response.failed",
                    "response": {
                        "id": "r1",
                        "status": "failed",
                        "error": {"code": "invalid_prompt", "message": f"key {key} flagged"},
                    },
                }
            ]
        ),
        Reply(events=[{"type": "error", "code": "server_error", "message": f"boom {key}"}]),
        Reply(
            events=[{"type": "response.incomplete", "response": {"id": "r2", "incomplete_details": {"reason": key}}}]
        ),
    ]


@pytest.fixture
def loop() -> Iterator[AgentLoop]:
    lp = AgentLoop(name="secrets-loop")
    yield lp
    lp.call_soon(lp.loop.stop)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # root: httpx, httpcore, websockets, jupyter_agent, asyncio
    names = ("httpx", "httpcore", "websockets", "jupyter_agent", "asyncio")
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for name, level in saved.items():  # later tests (e.g. the soak) must not keep DEBUG records
        logging.getLogger(name).setLevel(level)


def everything_visible(agent: Agent, turns: list[Any], extra: list[Any] = ()) -> str:  # type: ignore[assignment]
    """Every text a user, a log reader or a front end could see."""
    parts: list[str] = [
        repr(agent),
        str(agent),
        repr(agent.resolved_provider()),
        str(agent.resolved_provider().__dict__),
        repr(agent.session),
        str(vars(agent.session)),
        str(agent.trait_values()),
        str(agent.config),
        json.dumps(agent.transcript()),
        json.dumps(agent.history, default=str),
    ]
    for turn in turns:
        parts += [str(turn.error), turn.text, json.dumps(turn.telemetry, default=str), repr(turn)]
        parts += [json.dumps(e.to_dict(), default=str) for e in turn.events]
        state = TurnViewState()
        for e in turn.events:
            state.handle(e)
        parts += [state.markdown(), state.plain_text(), repr(state)]
    parts += [repr(x) for x in extra]
    return "\n".join(parts)


def run_hostile_turns(agent: Agent, server: ScriptedServer, key: str, loop: AgentLoop) -> list[Any]:
    replies = hostile_replies(key)
    server.add_responses(*replies)
    turns = []
    for i in range(len(replies)):
        turn = loop.run_sync(agent.ask(f"question {i}"), timeout=20)
        assert turn.status == "failed", (i, turn.status, turn.text)
        turns.append(turn)
    assert all(_key_of(r) == key for r in server.find_requests("POST", "/responses")), "the key was not sent as auth"
    return turns


def assert_clean(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text, f"the API key leaked: ...{text[max(0, text.find(key) - 200) : text.find(key) + 60]}..."


@pytest.mark.parametrize("path", ["openai_env", "azure_env", "explicit", "set_api_key"])
def test_canary_never_leaks_over_http(
    path: str, loop: AgentLoop, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    with ScriptedServer() as server:
        key = AZURE_CANARY if path == "azure_env" else CANARY
        kwargs: dict[str, Any] = {
            "max_retries": 0,
            "prewarm": False,
            "loop": loop,
            "transport": "sse",
            "model": "gpt-5-scripted",
        }
        if path == "openai_env":
            monkeypatch.setenv("OPENAI_API_KEY", key)
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            agent = Agent(**kwargs)
        elif path == "azure_env":
            monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
            monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url("/"))
            agent = Agent(**kwargs)
            assert agent.resolved_provider().name == "azure"
        elif path == "explicit":
            agent = Agent(base_url=server.base_url, api_key=key, provider="compatible", **kwargs)
        else:
            agent = Agent(base_url=server.base_url, api_key="sk-old-not-secret", provider="compatible", **kwargs)
            agent.set_api_key(key)
        comm = _Comm()
        bridge = PanelBridge(comm, lambda: agent)
        bridge.handle({"type": "hello", "version": 1})
        turns = run_hostile_turns(agent, server, key, loop)
        bridge.handle({"type": "history"})
        bridge.close()
        seen = everything_visible(agent, turns, [resolve_provider(env=dict(os.environ), dotenv=None)])
        seen += _our_logs(debug_logs, everyone=True)
        seen += json.dumps(comm.sent, default=str)
        assert_clean(seen, key)
        errors = [t.error for t in turns]
        assert any("***" in (e or "") for e in errors), f"expected the echoed key to be redacted, not dropped: {errors}"
        loop.run_sync(agent.session.aclose())


def _our_logs(caplog: pytest.LogCaptureFixture, everyone: bool = False) -> str:
    """Log text of jupyter_agent's loggers (all client-side loggers with ``everyone``).

    httpcore and websockets print response headers and frames verbatim at DEBUG, so a server
    echoing the key would put it there, were it not for ``transport.redact.SECRET_FILTER``.
    """
    return "\n".join(
        r.getMessage() + repr(r.args) + (r.exc_text or "")
        for r in caplog.records
        if (everyone or r.name.startswith("jupyter_agent")) and not r.name.startswith(SERVER_LOGGERS)
    )


#: The scripted server's own logging (it receives the key, as any server does): not the client's.
SERVER_LOGGERS = ("websockets.server", "jupyter_agent.testing")


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_sent_key_is_never_logged_by_the_http_and_websocket_libraries(
    transport: str, loop: AgentLoop, debug_logs: pytest.LogCaptureFixture
) -> None:
    with ScriptedServer() as server:
        server.add_response(Reply(status=400, body={"error": {"message": "nope", "type": "invalid_request_error"}}))
        server.add_response(text_reply("fine", phase="final_answer"))
        server.add_ws_connection(WsConn(requests=[[{"type": "error", "status": 400, "error": {"message": "nope"}}]]))
        server.add_ws_connection(
            WsConn(requests=[list(__import__("jupyter_agent.testing", fromlist=["text_events"]).text_events("fine"))])
        )
        agent = Agent(
            model="gpt-5-scripted",
            base_url=server.base_url,
            api_key=CANARY,
            transport=transport,
            loop=loop,
            provider="openai" if transport == "websocket" else "compatible",
            prewarm=False,
            max_retries=0,
            web_search="disabled",
        )
        turns = [loop.run_sync(agent.ask(f"q{i}"), timeout=20) for i in range(2)]
        assert [t.status for t in turns] == ["failed", "completed"]
        assert any(r.name.startswith(("httpcore", "websockets")) for r in debug_logs.records), (
            "DEBUG logging was not captured"
        )
        assert_clean(_our_logs(debug_logs, everyone=True) + everything_visible(agent, turns), CANARY)
        loop.run_sync(agent.session.aclose())


class _Comm:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def on_msg(self, cb: Any) -> None:
        pass

    def on_close(self, cb: Any) -> None:
        pass

    def send(self, data: dict[str, Any]) -> None:
        self.sent.append(data)


def test_canary_never_leaks_over_websocket(loop: AgentLoop, debug_logs: pytest.LogCaptureFixture) -> None:
    with ScriptedServer() as server:
        echo = f"Incorrect API key provided: {CANARY}"
        server.add_ws_connections(
            WsConn(
                status=400,
                body={"error": {"message": echo, "type": "invalid_request_error"}},
                headers={"x-request-id": CANARY},
            ),
            WsConn(
                requests=[
                    [
                        {
                            "type": "error",
                            "status": 400,
                            "error": {"message": echo, "type": "invalid_request_error"},
                            "headers": {"x-request-id": CANARY},
                        }
                    ]
                ]
            ),
            WsConn(
                requests=[
                    [
                        {
                            "type": "response.failed",
                            "response": {"id": "r", "error": {"code": "invalid_prompt", "message": echo}},
                        }
                    ]
                ]
            ),
        )
        agent = Agent(
            model="gpt-5-scripted",
            base_url=server.base_url,
            api_key=CANARY,
            provider="openai",
            transport="websocket",
            loop=loop,
            prewarm=False,
            max_retries=0,
            web_search="disabled",
        )
        turns = [loop.run_sync(agent.ask(f"q{i}"), timeout=20) for i in range(3)]
        # The first turn's refused handshake may fall back to HTTP; the HTTP path gets a hostile reply too.
        assert all(t.status in ("failed", "completed") for t in turns)
        handshakes = [r for r in server.requests if r.is_websocket]
        assert handshakes and all(_key_of(r) == CANARY for r in handshakes)
        seen = everything_visible(agent, turns)
        seen += _our_logs(debug_logs, everyone=True)
        assert_clean(seen, CANARY)
        loop.run_sync(agent.session.aclose())


def test_secret_objects_do_not_show_the_key() -> None:
    import pickle

    from jupyter_agent.config import Secret

    s = Secret(CANARY)
    assert CANARY not in repr(s) + str(s) + f"{s}" + "%s" % (s,)  # noqa: UP031 - %-formatting is what is tested
    with pytest.raises(TypeError):
        pickle.dumps(s)
    provider = resolve_provider(
        base_url="http://127.0.0.1:9/v1", api_key=CANARY, provider="compatible", env={}, dotenv=None
    )
    assert CANARY not in repr(provider) + str(provider)
    assert provider.auth_headers() == {"Authorization": f"Bearer {CANARY}"}  # the one place it belongs


# --- notebooks in a real kernel -------------------------------------------------------------

CONNECT_NOTEBOOK_CELLS = [
    "import logging, os\n"
    "from jupyter_agent.testing import ScriptedServer, Reply\n"
    "def hostile(req):\n"
    "    key = req.headers.get('authorization', '').removeprefix('Bearer ')\n"
    "    return Reply(status=400, headers={'x-request-id': key}, body={'error': {'message': 'bad key ' + key}})\n"
    "server = ScriptedServer(responder=hostile).start()",
    "%load_ext jupyter_agent",
    "%agent connect --base-url {server.base_url} --provider compatible --model gpt-5.2 --transport sse --api-key-env JA_CANARY_KEY",
    "%%agent\nWhat is my key?",
    "from jupyter_agent import get_agent\nagent = get_agent()\nagent.max_retries = 0\nprint(repr(agent), agent.transcript(), agent.turns[-1].error)",
    "%agent",
    "agent",
]


def _kernel_log_cell(log_path: Path) -> Any:
    import nbformat

    return nbformat.v4.new_code_cell(
        "import logging\n"
        f"logging.basicConfig(level=logging.DEBUG, filename={str(log_path)!r}, force=True)\n"
        "for _n in ('httpx', 'httpcore', 'websockets', 'jupyter_agent', 'asyncio'):\n"
        "    logging.getLogger(_n).setLevel(logging.DEBUG)"
    )


def _notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.mark.kernel
def test_notebooks_with_canary_keys_leak_nothing(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    with ScriptedServer(
        responder=lambda req: text_reply(f"echo {req.headers.get('x-request-id', '')}", phase="final_answer")
    ) as echo:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
        # A canary in every variable a notebook could read; OPENAI_BASE_URL keeps the env provider on 127.0.0.1.
        env.update(
            {
                "OPENAI_API_KEY": CANARY,
                "OPENAI_BASE_URL": echo.base_url,
                "AZURE_OPENAI_API_KEY": AZURE_CANARY,
                "JA_CANARY_KEY": CANARY,
                "JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history"),
            }
        )
        connect_nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CONNECT_NOTEBOOK_CELLS])
        runs: list[tuple[str, Any]] = [(p.name, nbformat.read(p, as_version=4)) for p in _notebooks()]
        runs.append(("connect-api-key-env.ipynb", connect_nb))
        assert len(runs) > 1, "no notebooks found"
        saved: list[Path] = []
        for name, nb in runs:
            log_path = tmp_path / f"{name}.kernel.log"
            nb.cells.insert(0, _kernel_log_cell(log_path))
            client = NotebookClient(
                nb,
                timeout=180,
                kernel_name="python3",
                allow_errors=True,
                resources={"metadata": {"path": str(ROOT / "notebooks")}},
                store_widget_state=True,
            )
            client.execute(env=env)  # the kernel's whole environment (this process's stays untouched)
            out = tmp_path / name
            nbformat.write(nb, out)
            saved += [out, log_path]
        for path in saved:
            text = path.read_text(errors="replace") if path.exists() else ""
            assert_clean(text, CANARY, AZURE_CANARY)
        connect_text = (tmp_path / "connect-api-key-env.ipynb").read_text()
        assert "bad key ***" in connect_text or "***" in connect_text, "the hostile echo should show up redacted"
        history = tmp_path / "history"
        if history.exists():
            for f in history.rglob("*"):
                if f.is_file():
                    assert_clean(f.read_text(errors="replace"), CANARY, AZURE_CANARY)
        assert any(_key_of(r) == CANARY for r in echo.requests), "the env key was not used"
    print(f"scanned {len(saved)} files from {len(runs)} notebooks", file=sys.stderr)
