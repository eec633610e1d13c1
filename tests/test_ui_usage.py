"""``%agent usage``: the usage endpoint URL (spec §5.4), fetching it from the scripted server, and
the messages when a provider has none or answers badly (never a traceback, never the key)."""

from __future__ import annotations

import socket
import time

import pytest

from jupyter_agent.agent import Agent
from jupyter_agent.testing import Raw, Reply, ScriptedServer
from jupyter_agent.ui.gauges import RateLimitGauges
from jupyter_agent.ui.text import TextOutput
from jupyter_agent.usage import fetch_usage_sync, usage_url

KEY = "sk-usage-" + "c0ffee" * 4


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.openai.com/v1", None),
        ("https://chatgpt.com", "https://chatgpt.com/backend-api/wham/usage"),
        ("https://chat.openai.com/", "https://chat.openai.com/backend-api/wham/usage"),
        ("https://chatgpt.com/backend-api/codex", "https://chatgpt.com/backend-api/wham/usage"),
        ("https://proxy.example/team/backend-api/codex", "https://proxy.example/team/backend-api/wham/usage"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/api/codex/usage"),
    ],
)
def test_usage_url(base, expected):
    assert usage_url(base) == expected


@pytest.fixture
def server():
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def agent(server):
    return Agent(base_url=server.base_url, api_key=KEY, provider="compatible", model="gpt-test")


def test_usage_fetches_buckets_into_gauges_and_agent_state(server, agent):
    now = int(time.time())
    server.add_route(
        "GET",
        "/api/codex/usage",
        Reply(
            body={
                "plan_type": "education",
                "rate_limit": {
                    "primary_window": {"used_percent": 20, "limit_window_seconds": 18000, "reset_at": now + 600}
                },
                "credits": {"has_credits": True, "unlimited": True, "balance": None},
                "additional_rate_limits": [
                    {
                        "limit_name": "Spark",
                        "metered_feature": "codex_spark",
                        "rate_limit": {
                            "primary_window": {"used_percent": 75, "limit_window_seconds": 3600, "reset_at": now + 60},
                            "secondary_window": {
                                "used_percent": 91,
                                "limit_window_seconds": 604800,
                                "reset_at": now + 9e4,
                            },
                        },
                    },
                ],
            }
        ),
    )
    result = fetch_usage_sync(agent)
    assert isinstance(result, RateLimitGauges)
    text = result.text()
    assert "5h limit:" in text and "80% left" in text and "Credits:" in text and "Unlimited" in text
    # two windows: a heading row, then the window rows
    assert "Spark limit:\n" in text and "1h limit:" in text and "25% left" in text and "Weekly limit:" in text
    html = result.html()
    assert 'data-level="warn"' in html and 'data-level="critical"' in html
    assert set(agent.rate_limits) >= {"codex", "codex_spark"}
    assert agent.rate_limits["codex"].plan_type == "edu"
    req = server.requests[-1]
    assert (req.method, req.path) == ("GET", "/api/codex/usage")
    assert req.headers.get("authorization") == f"Bearer {KEY}"
    assert KEY not in text and KEY not in html
    result.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(status=404, body={"error": {"message": "not here"}}), "This provider has no usage endpoint"),
        (Reply(status=500, body={"error": {"message": "boom"}}), "The usage endpoint answered 500."),
        (
            Reply(status=200, headers={"content-type": "application/json"}, events=[Raw(b"{not json")]),
            "did not answer with JSON",
        ),
        (Reply(body=["a", "list"]), "unexpected shape"),
    ],
)
def test_usage_errors_are_one_clear_line(server, agent, reply, message):
    server.add_route("GET", "/api/codex/usage", reply)
    result = fetch_usage_sync(agent)
    assert isinstance(result, TextOutput)
    assert result.text.startswith("Usage: ") and message in result.text
    assert KEY not in result.text


def test_usage_unreachable_and_openai_keys(agent):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent.base_url = f"http://127.0.0.1:{port}/v1"  # nothing listens there
    result = fetch_usage_sync(agent)
    assert isinstance(result, TextOutput) and "Could not reach the usage endpoint" in result.text
    assert KEY not in result.text
    agent.base_url = "https://api.openai.com/v1"
    result = fetch_usage_sync(agent)
    assert isinstance(result, TextOutput) and "OpenAI API keys have no usage endpoint" in result.text
