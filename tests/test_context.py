"""Issue 14: context window sources, the context gauge, session token totals, bounded tool outputs."""

from __future__ import annotations

import json
from typing import Any

from jupyter_agent import events as ev
from jupyter_agent.agent.context import ContextWindow, cap_output, server_window
from jupyter_agent.agent.windows import known_window
from jupyter_agent.config import Provider
from jupyter_agent.magic_commands import status_text
from jupyter_agent.store import ConversationStore
from jupyter_agent.testing import Reply, ScriptedServer, function_call_reply, text_reply
from jupyter_agent.testing.replies import usage


def _gauges(turn: Any) -> list[ev.ContextGauge]:
    return [e for e in turn.events if isinstance(e, ev.ContextGauge)]


def _json(body: dict[str, Any]) -> Reply:
    return Reply(body=body, headers={"content-type": "application/json"})


async def test_window_from_config_wins_and_gauge_shows_used_fraction(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", model="gpt-4o", usage_obj=usage(850, 10, cached=200, reasoning=3)))
    agent = make_agent(model="gpt-4o", context_window=1000)
    turn = await agent.ask("hello")
    (gauge,) = _gauges(turn)
    assert (gauge.input_tokens, gauge.window) == (850, 1000)
    assert gauge.source == "%config Agent.context_window"
    assert gauge.used_percent == 85.0
    assert gauge.totals.cached_input_tokens == 200
    assert "85% used (850 / 1,000 tokens" in status_text(agent)


async def test_window_from_the_servers_model_list(server: ScriptedServer, make_agent: Any) -> None:
    server.add_route(
        "GET",
        "/v1/models",
        _json({"data": [{"id": "other", "max_model_len": 1}, {"id": "my-model", "max_model_len": 32768}]}),
    )
    server.add_response(text_reply("hi", model="my-model", usage_obj=usage(4096, 10)))
    agent = make_agent(model="my-model", provider="compatible")
    (gauge,) = _gauges(await agent.ask("hello"))
    assert (gauge.window, gauge.source) == (32768, "the server's model list")
    assert gauge.used_percent == 12.5
    assert len(server.find_requests("GET", "/models")) == 1
    server.add_response(text_reply("hi", model="my-model"))
    await agent.ask("again")
    assert len(server.find_requests("GET", "/models")) == 1  # asked once per model


async def test_window_from_the_table_when_the_server_says_nothing(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", model="gpt-4o-mini-2024-07-18", usage_obj=usage(12_800, 10)))
    agent = make_agent(model="gpt-4o-mini-2024-07-18", provider="compatible")
    (gauge,) = _gauges(await agent.ask("hello"))
    assert gauge.window == 128_000
    assert gauge.source.startswith("known model table (platform.openai.com/docs/models/gpt-4o-mini")
    assert gauge.used_percent == 10.0


async def test_unknown_window_is_said_never_invented(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", model="mystery-7b", usage_obj=usage(500, 10)))
    agent = make_agent(model="mystery-7b", provider="compatible")
    (gauge,) = _gauges(await agent.ask("hello"))
    assert gauge.window is None and gauge.used_percent is None
    assert gauge.source.startswith("unknown")
    assert "window unknown" in status_text(agent)


async def test_embedded_model_window_from_llamacpp_props(server: ScriptedServer) -> None:
    server.add_route("GET", "/props", _json({"default_generation_settings": {"n_ctx": 8192}, "total_slots": 1}))
    provider = Provider(name="local", base_url=server.base_url)
    found = await server_window(provider, "smollm2")
    assert found == ContextWindow(8192, "the embedded model (llama.cpp /props n_ctx)")
    openai = Provider(name="openai", base_url=server.base_url)
    assert await server_window(openai, "gpt-5") is None  # OpenAI's model list has no window: not asked
    assert server.find_requests(path_suffix="/models") == []


def test_known_window_table() -> None:
    assert known_window("gpt-4.1-mini")[0] == 1_047_576  # type: ignore[index]
    assert known_window("openai/gpt-5")[0] == 400_000  # type: ignore[index]
    assert known_window("gpt-5-chat-latest")[0] == 128_000  # type: ignore[index]
    assert known_window("gpt-50") is None and known_window("llama3") is None


async def test_session_totals_add_up_over_requests(server: ScriptedServer, make_agent: Any) -> None:
    server.add_responses(
        text_reply("a", model="gpt-5", usage_obj=usage(100, 10, cached=40, reasoning=5)),
        text_reply("b", model="gpt-5", usage_obj=usage(300, 20, cached=90, reasoning=7)),
    )
    agent = make_agent()
    await agent.ask("one")
    turn = await agent.ask("two")
    totals = agent.session_usage
    assert (totals.input_tokens, totals.cached_input_tokens, totals.output_tokens, totals.reasoning_output_tokens) == (
        400,
        130,
        30,
        12,
    )
    assert _gauges(turn)[-1].input_tokens == 300  # the gauge is the LAST request, not the sum
    text = status_text(agent)
    assert "Session tokens: input 400 (cached 130), output 30 (reasoning 12)" in text
    assert ev.event_from_dict(_gauges(turn)[-1].to_dict()) == _gauges(turn)[-1]


def test_cap_output_head_tail_and_marker() -> None:
    text = "H" * 5000 + "M" * 10_000 + "T" * 5000
    capped = cap_output(text, 3000)
    assert capped.startswith("H" * 2000) and capped.endswith("T" * 1000)
    assert "[... 17000 characters (85% of the output) elided" in capped
    assert "the output had 20000 characters" in capped
    assert cap_output("short", 3000) == "short" and cap_output(text, 0) == text


async def test_tool_output_capped_in_history_full_in_event_and_store(
    server: ScriptedServer, make_agent: Any, tmp_path: Any
) -> None:
    big = "".join(f"line {i:05d}\n" for i in range(1500))  # 16,500 characters

    agent = make_agent(tool_output_limit=2000)

    def dump() -> str:
        """Return a big output."""
        return big

    agent.add_tool(dump, approval="auto")
    store = ConversationStore(tmp_path, "n.ipynb")
    agent.attach_store(store)
    server.add_responses(function_call_reply("dump", "{}", model="gpt-5"), text_reply("done", model="gpt-5"))
    turn = await agent.ask("dump it")
    (result,) = [e for e in turn.events if isinstance(e, ev.ToolResult)]
    assert result.output == big  # the cell and the panel show everything
    (kept,) = [i for i in agent.history if i["type"] == "function_call_output"]
    assert len(kept["output"]) < 2300 and "line 00000" in kept["output"] and "line 01499" in kept["output"]
    assert "elided by jupyter-agent" in kept["output"]
    sent = json.loads(server.find_requests("POST", "/responses")[-1].body)["input"]
    assert max(len(str(i.get("output", ""))) for i in sent) < 2300  # the model got the capped copy
    saved = store.load(agent.conversation_id)
    (saved_out,) = [i for i in saved.items if i["type"] == "function_call_output"]
    assert saved_out["output"] == big  # the saved conversation keeps the whole output
    agent.load_history(saved.items, saved.id)
    (resumed,) = [i for i in agent.history if i["type"] == "function_call_output"]
    assert resumed["output"] == kept["output"]  # resumed history is capped the same way


async def test_gateway_serving_a_known_openai_model_is_not_asked(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", model="gpt-5.2", usage_obj=usage(40_000, 10)))
    agent = make_agent(model="gpt-5.2", provider="compatible")
    (gauge,) = _gauges(await agent.ask("hello"))
    assert gauge.window == 400_000 and gauge.used_percent == 10.0
    assert server.find_requests("GET") == []


def test_gauge_colours_follow_the_rate_limit_thresholds() -> None:
    from jupyter_agent.ui.context_gauge import context_html, context_line

    def gauge(tokens: int, window: int | None) -> ev.ContextGauge:
        return ev.ContextGauge(input_tokens=tokens, window=window, source="test")

    assert 'data-level="ok"' in context_html(gauge(690, 1000))
    assert 'data-level="warn"' in context_html(gauge(700, 1000))
    assert 'data-level="critical"' in context_html(gauge(950, 1000))
    assert "window unknown" in context_html(gauge(950, None))
    assert context_line(gauge(250, 1000)).startswith("Context: " + "█" * 5 + "░" * 15 + " 25% used")
    assert 'style="width:25.0%;' in context_html(gauge(250, 1000))  # fills as the context fills
