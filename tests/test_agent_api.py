"""The public API of issue 2 and provider resolution from the environment, against the scripted server.

``Agent(model=, base_url=, api_key=, transport="sse")``, ``await agent.ask()``, ``turn.text``,
``turn.events``, ``agent.rate_limits``; ``Agent()`` with no arguments picks OpenAI from
``OPENAI_API_KEY`` (+ ``OPENAI_BASE_URL``), Azure from ``AZURE_OPENAI_API_KEY`` +
``AZURE_OPENAI_ENDPOINT``, else the embedded local model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_agent import Agent
from jupyter_agent import events as ev
from jupyter_agent.config import resolve_provider
from jupyter_agent.testing import Reply, ScriptedServer, echo_responder, text_reply
from tests.sse_support import API_KEY, assert_no_secret, of_type, server  # noqa: F401

ENV_NAMES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No provider variables, and a working directory without a ``.env`` file."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield monkeypatch


async def _close(agent: Agent) -> None:
    if agent._session is not None:
        await agent.agent_loop.run(agent._session.aclose())


async def test_explicit_arguments(server: ScriptedServer, clean_env: pytest.MonkeyPatch) -> None:
    server.add_response(
        text_reply(
            "Hi there",
            phase="final_answer",
            headers={"x-codex-primary-used-percent": "10", "x-codex-primary-window-minutes": "300"},
        )
    )
    agent = Agent(model="gpt-5-mini", base_url=server.base_url, api_key=API_KEY, transport="sse", prewarm=False)
    try:
        turn = await agent.ask("hello")
    finally:
        await _close(agent)
    assert turn.status == "completed" and turn.text == "Hi there" and turn.prompt == "hello"
    assert all(isinstance(e, ev.AgentEvent) for e in turn.events)
    assert isinstance(turn.events[0], ev.TurnStarted) and turn.events[0].model == "gpt-5-mini"
    assert isinstance(turn.events[-1], ev.TurnDone) and turn.events[-1].text == "Hi there"
    assert {type(e) for e in turn.events} >= {ev.TextDelta, ev.MessageDone, ev.UsageEvent, ev.RateLimits}
    assert all(e.turn_id == turn.id for e in turn.events)
    assert turn.usage is not None and turn.usage.total_tokens == 15
    limits = agent.rate_limits
    assert (
        set(limits) == {"codex"}
        and limits["codex"].primary is not None
        and limits["codex"].primary.used_percent == 10.0
    )
    req = server.requests[0]
    assert req.json["model"] == "gpt-5-mini" and req.headers["authorization"] == f"Bearer {API_KEY}"
    # JSON-safe events that round-trip (the comm bridge relies on it) and never carry the key.
    dicts = [e.to_dict() for e in turn.events]
    json.dumps(dicts)
    assert [ev.event_from_dict(d) for d in dicts] == turn.events
    assert_no_secret(dicts)
    assert API_KEY not in repr(agent.resolved_provider())


async def test_openai_from_environment(server: ScriptedServer, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", API_KEY)
    clean_env.setenv("OPENAI_BASE_URL", server.base_url)
    assert Agent(prewarm=False).resolved_provider().base_url == server.base_url
    server.add_response(text_reply("from env"))
    agent = Agent(transport="sse", prewarm=False)
    try:
        turn = await agent.ask("hello")
    finally:
        await _close(agent)
    assert turn.text == "from env"
    req = server.requests[0]
    assert req.path == "/v1/responses"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.json["model"] == "gpt-5.2"  # the OpenAI default model
    assert req.json["store"] is False


def test_openai_without_base_url_is_the_official_api(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", API_KEY)
    provider = Agent(prewarm=False).resolved_provider()
    assert provider.name == "openai" and provider.base_url == "https://api.openai.com/v1"
    assert provider.auth_headers() == {"Authorization": f"Bearer {API_KEY}"}


async def test_azure_from_environment(server: ScriptedServer, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_OPENAI_API_KEY", API_KEY)
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", server.url("/"))
    clean_env.setenv("AZURE_OPENAI_DEPLOYMENT", "my-gpt5-deployment")
    server.add_response(text_reply("from azure"))
    agent = Agent(transport="sse", prewarm=False)
    try:
        assert agent.resolved_provider().name == "azure"
        turn = await agent.ask("hello")
    finally:
        await _close(agent)
    assert turn.text == "from azure"
    req = server.requests[0]
    assert req.path == "/openai/v1/responses"
    assert req.headers["api-key"] == API_KEY and "authorization" not in req.headers
    assert req.json["model"] == "my-gpt5-deployment"
    assert req.json["store"] is True


@pytest.mark.parametrize(
    ("endpoint", "base"),
    [
        ("https://res.openai.azure.com", "https://res.openai.azure.com/openai/v1"),
        ("https://res.openai.azure.com/", "https://res.openai.azure.com/openai/v1"),
        ("https://res.openai.azure.com/openai", "https://res.openai.azure.com/openai/v1"),
        ("https://res.openai.azure.com/openai/v1/", "https://res.openai.azure.com/openai/v1"),
    ],
)
def test_azure_endpoint_normalisation(endpoint: str, base: str) -> None:
    provider = resolve_provider(env={"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": endpoint}, dotenv=None)
    assert provider.name == "azure" and provider.base_url == base
    assert provider.responses_url == base + "/responses"


def test_openai_key_wins_over_azure(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "k1")
    clean_env.setenv("AZURE_OPENAI_API_KEY", "k2")
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    assert Agent(prewarm=False).resolved_provider().name == "openai"


def test_azure_needs_both_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_OPENAI_API_KEY", "k2")
    assert Agent(prewarm=False).resolved_provider().name == "local"


def test_no_configuration_means_the_local_model(clean_env: pytest.MonkeyPatch) -> None:
    agent = Agent(prewarm=False)
    provider = agent.resolved_provider()
    assert provider.name == "local" and provider.api_key is None
    assert agent.provider_name == "local"


async def test_dotenv_file_is_read_and_real_env_wins(
    server: ScriptedServer, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        f'# comment\nexport OPENAI_API_KEY="{API_KEY}"\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n'
    )
    clean_env.setenv("OPENAI_BASE_URL", server.base_url)
    server.add_response(text_reply("dotenv"))
    agent = Agent(transport="sse", prewarm=False)
    try:
        turn = await agent.ask("hello")
    finally:
        await _close(agent)
    assert turn.text == "dotenv"
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_ask_from_a_thread_without_a_loop(server: ScriptedServer, clean_env: pytest.MonkeyPatch) -> None:
    """``ask`` works from any loop: here a fresh ``asyncio.run`` in a worker thread."""
    server.add_response(text_reply("threaded"))
    agent = Agent(model="gpt-5", base_url=server.base_url, api_key=API_KEY, transport="sse", prewarm=False)
    try:
        turn = await asyncio.to_thread(lambda: asyncio.run(agent.ask("hi")))
    finally:
        await _close(agent)
    assert turn.text == "threaded"


def test_organization_and_project_headers_only_for_the_official_api() -> None:
    env = {"OPENAI_API_KEY": "k", "OPENAI_ORGANIZATION": "org-1", "OPENAI_PROJECT": "proj_1"}
    official = resolve_provider(env=env, dotenv=None)
    assert official.extra_headers == {"OpenAI-Organization": "org-1", "OpenAI-Project": "proj_1"}
    other = resolve_provider(env={**env, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, dotenv=None)
    assert other.name == "compatible" and other.extra_headers == {}


async def test_keyless_compatible_server_gets_no_authorization(
    server: ScriptedServer, clean_env: pytest.MonkeyPatch
) -> None:
    server.add_response(text_reply("no key needed"))
    agent = Agent(model="qwen", base_url=server.base_url, transport="sse", prewarm=False)
    try:
        turn = await agent.ask("hi")
    finally:
        await _close(agent)
    assert turn.text == "no key needed"
    assert "authorization" not in server.requests[0].headers and "api-key" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://res.openai.azure.com", "https://res.openai.azure.com/openai/v1"),
        ("https://res.openai.azure.com/", "https://res.openai.azure.com/openai/v1"),
        ("https://res.openai.azure.com/openai", "https://res.openai.azure.com/openai/v1"),
        ("https://res.openai.azure.com/openai/v1", "https://res.openai.azure.com/openai/v1"),
        ("https://gw.azure-api.net/team-a/openai/v1", "https://gw.azure-api.net/team-a/openai/v1"),
        ("https://gw.azure-api.net/custom-route", "https://gw.azure-api.net/custom-route"),
    ],
)
def test_explicit_azure_base_url(base_url: str, expected: str) -> None:
    provider = resolve_provider(base_url=base_url, api_key="k", env={}, dotenv=None)
    assert provider.name == "azure" and provider.base_url == expected
    assert provider.auth_headers() == {"api-key": "k"}


async def test_bare_agent_from_environment(server: ScriptedServer, clean_env: pytest.MonkeyPatch) -> None:
    """Literally ``Agent()`` (default transport, prewarm on) with the variables set."""
    server.responder = echo_responder
    clean_env.setenv("OPENAI_API_KEY", API_KEY)
    clean_env.setenv("OPENAI_BASE_URL", server.base_url)
    agent = Agent()
    try:
        turn = await agent.ask("hello")
    finally:
        await _close(agent)
    assert turn.status == "completed" and turn.text == 'You said: "hello"'
    posts = [r for r in server.requests if r.method == "POST"]
    assert posts and all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in posts)


async def test_401_rereads_the_key_from_the_environment_next_turn(
    server: ScriptedServer, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("OPENAI_BASE_URL", server.base_url)
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-old-revoked\n")
    server.add_response(
        Reply(
            status=401,
            body={
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
    )
    server.add_response(text_reply("welcome back"))
    agent = Agent(transport="sse", prewarm=False)
    try:
        turn = await agent.ask("hello")
        assert turn.status == "failed" and of_type(turn.events, ev.Error)[0].code == "unauthorized"
        (tmp_path / ".env").write_text(f"OPENAI_API_KEY={API_KEY}\n")  # the user fixes the key
        turn2 = await agent.ask("hello again")
    finally:
        await _close(agent)
    assert turn2.status == "completed" and turn2.text == "welcome back"
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer sk-old-revoked", f"Bearer {API_KEY}"]
    users = [i["content"][0]["text"] for i in server.requests[1].json["input"] if i.get("role") == "user"]
    assert users == ["hello", "hello again"]


async def test_401_with_an_explicit_key_keeps_it(server: ScriptedServer, clean_env: pytest.MonkeyPatch) -> None:
    server.add_response(Reply(status=401, body={"error": {"message": "bad key"}}))
    server.add_response(text_reply("ok"))
    agent = Agent(model="gpt-5", base_url=server.base_url, api_key=API_KEY, transport="sse", prewarm=False)
    try:
        await agent.ask("one")
        await agent.ask("two")
    finally:
        await _close(agent)
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {API_KEY}"] * 2
