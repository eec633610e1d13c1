"""Every recorded OpenAI stream, served byte for byte, parses into the right agent events.

Each ``.sse`` file under the shared fixtures goes through the real client path
(``Agent(transport="sse")`` -> ModelSession -> SseTransport -> httpx -> 127.0.0.1 socket).
Expectations come from the raw ``data:`` JSON of the file (a plain ``json.loads`` oracle) and
from the fixtures README (what each recording covers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.protocol.errors import QUOTA_MESSAGE
from jupyter_agent.testing import ScriptedServer, text_reply
from tests.sse_support import RECORDED_STREAM_NAMES, assert_no_secret, of_type, sse_payloads

ALL_STREAMS = RECORDED_STREAM_NAMES
FAILING = {"error-insufficient-quota-gpt-5", "incomplete-max-output-tokens-gpt-4o"}
FUNCTION_CALLS = {
    "function-call-gpt-4.1",
    "reasoning-encrypted-function-call-gpt-5",
    "phase-commentary-function-call-gpt-5.5",
}


def _oracle(root: Path, name: str) -> dict[str, Any]:
    events = sse_payloads(root / f"{name}.sse")
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    summary: dict[int, str] = {}
    for e in events:
        if e["type"] == "response.reasoning_summary_text.delta":
            summary[e["summary_index"]] = summary.get(e["summary_index"], "") + e["delta"]
    terminal = events[-1]
    return {
        "text": "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta"),
        "messages": [
            ("".join(p.get("text", "") for p in i["content"]), i.get("phase")) for i in done if i["type"] == "message"
        ],
        "summary": summary,
        "calls": [(i["call_id"], i["name"], i["arguments"]) for i in done if i["type"] == "function_call"],
        "searches": [i for i in done if i["type"] == "web_search_call"],
        "reasoning": [i for i in done if i["type"] == "reasoning"],
        "terminal": terminal,
        "usage": (terminal.get("response") or {}).get("usage"),
    }


def test_all_thirteen_streams_are_covered(recorded_streams: Path) -> None:
    assert len(ALL_STREAMS) == 13
    assert sorted(p.stem for p in recorded_streams.glob("*.sse")) == sorted(ALL_STREAMS)


async def _play(
    server: ScriptedServer, make_agent: Any, root: Path, name: str, *then: Any, **agent_kw: Any
) -> tuple[Any, Any]:
    server.add_replies_from_sse_file(root / f"{name}.sse", use_recorded_headers=True)
    server.add_responses(*then)
    agent = make_agent(**agent_kw)
    turn = await agent.ask("hello")
    return agent, turn


@pytest.mark.parametrize("name", [n for n in ALL_STREAMS if n not in FAILING and n not in FUNCTION_CALLS])
async def test_text_streams(recorded_streams: Path, server: ScriptedServer, make_agent: Any, name: str) -> None:
    oracle = _oracle(recorded_streams, name)
    agent, turn = await _play(server, make_agent, recorded_streams, name)
    assert turn.status == "completed", turn.error
    deltas = of_type(turn.events, ev.TextDelta)
    assert "".join(d.delta for d in deltas) == oracle["text"]
    assert [(m.text, m.phase) for m in of_type(turn.events, ev.MessageDone)] == oracle["messages"]
    # The final answer is the (non-commentary) message text; deltas carry the item's phase.
    assert turn.text == "\n\n".join(t for t, p in oracle["messages"] if p != "commentary")
    phases = {m.item_id: m.phase for m in of_type(turn.events, ev.MessageDone)}
    assert all(d.phase == phases.get(d.item_id) for d in deltas)
    # Reasoning summary deltas per summary_index.
    got: dict[int, str] = {}
    for r in of_type(turn.events, ev.ReasoningDelta):
        assert r.kind == "summary"
        got[r.index] = got.get(r.index, "") + r.delta
    assert got == oracle["summary"]
    # Usage from response.completed.
    usage = of_type(turn.events, ev.UsageEvent)
    u = oracle["usage"]
    assert len(usage) == 1
    assert usage[0].usage == ev.Usage(
        input_tokens=u["input_tokens"],
        cached_input_tokens=(u.get("input_tokens_details") or {}).get("cached_tokens") or 0,
        output_tokens=u["output_tokens"],
        reasoning_output_tokens=(u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
        total_tokens=u["total_tokens"],
    )
    assert turn.usage == usage[0].usage
    # History: the user message, then the replayable output items.
    assert agent.history[0]["role"] == "user"
    assert [h for h in agent.history if h.get("type") == "message" and h["role"] == "assistant"][-1]["content"][0][
        "text"
    ] == oracle["messages"][-1][0]
    assert not of_type(turn.events, ev.Error)
    assert_no_secret([e.to_dict() for e in turn.events])


def test_multipart_reasoning_summary_has_four_parts(
    recorded_streams: Path,
) -> None:
    # README: o3-mini recording has summary_index 0..3.
    assert sorted(_oracle(recorded_streams, "reasoning-summary-multipart-o3-mini")["summary"]) == [0, 1, 2, 3]


async def test_legacy_stream_keeps_non_bmp_emoji(
    recorded_streams: Path, server: ScriptedServer, make_agent: Any
) -> None:
    _, turn = await _play(server, make_agent, recorded_streams, "text-legacy-no-sequence-number-gpt-4.1")
    assert "\U0001f30d" in turn.text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web-search-gpt-5", [("search", "weather: San Francisco, CA")]),
        (
            "web-search-queries-citations-gpt-5.2",
            [
                ("search", "tallest mountain in Alberta highest peak Alberta Mount Columbia elevation"),
                ("search", "Mount Columbia highest point in Alberta 3747 m highest mountain in Alberta"),
            ],
        ),
        (
            "web-search-open-page-find-in-page-gpt-5",
            [
                ("search", "Pydantic Logfire FastAPI instrumentation request response body"),
                ("open_page", "https://logfire.pydantic.dev/docs/reference/api/logfire/"),
                ("find_in_page", "'instrument_fastapi' in https://logfire.pydantic.dev/docs/reference/api/logfire/"),
                ("open_page", "https://logfire.pydantic.dev/docs/reference/api/logfire/"),
                (
                    "find_in_page",
                    "'Instrument a FastAPI app' in https://logfire.pydantic.dev/docs/reference/api/logfire/",
                ),
                ("open_page", "https://logfire.pydantic.dev/docs/integrations/web-frameworks/"),
                ("open_page", "https://logfire.pydantic.dev/docs/integrations/web-frameworks/fastapi/"),
                ("search", "OpenTelemetry ASGI instrumentation capture request body"),
            ],
        ),
    ],
)
async def test_web_search_streams(
    recorded_streams: Path, server: ScriptedServer, make_agent: Any, name: str, expected: list[tuple[str, str]]
) -> None:
    oracle = _oracle(recorded_streams, name)
    assert [s["action"]["type"] for s in oracle["searches"]] == [a for a, _ in expected]
    agent, turn = await _play(server, make_agent, recorded_streams, name)
    searches = of_type(turn.events, ev.WebSearch)
    started = [s for s in searches if s.status == "in_progress"]
    completed = [s for s in searches if s.status == "completed"]
    assert [s.item_id for s in started] == [s["id"] for s in oracle["searches"]]
    assert all(s.display_text == "Searching the web" and s.action is None for s in started)
    assert [(s.action, s.detail) for s in completed] == expected
    assert [s.display_text for s in completed] == [f"Searched {d}" for _, d in expected]
    for got, raw in zip(completed, oracle["searches"], strict=True):
        action = raw["action"]
        assert got.item_id == raw["id"]
        if action["type"] == "search":
            assert got.query == (action.get("query") or action["queries"][0])
        else:
            assert got.url == action.get("url")
            assert got.pattern == action.get("pattern")
    # Each started search precedes its completion.
    order = [(s.item_id, s.status) for s in searches]
    for s in oracle["searches"]:
        assert order.index((s["id"], "in_progress")) < order.index((s["id"], "completed"))
    # The calls are kept in history (ids stripped: not Azure).
    in_history = [h for h in agent.history if h.get("type") == "web_search_call"]
    assert len(in_history) == len(expected)
    assert all("id" not in h for h in in_history)


@pytest.mark.parametrize("name", sorted(FUNCTION_CALLS))
async def test_function_call_streams(
    recorded_streams: Path, server: ScriptedServer, make_agent: Any, name: str
) -> None:
    oracle = _oracle(recorded_streams, name)
    [(call_id, tool_name, arguments)] = oracle["calls"]
    seen: list[dict[str, Any]] = []

    def get_current_weather(location: str, unit: str) -> str:
        seen.append({"location": location, "unit": unit})
        return "Potato City"

    def get_capital(country: str) -> str:
        seen.append({"country": country})
        return "Potato City"

    def final_result(result: int) -> str:
        seen.append({"result": result})
        return "Potato City"

    tool = {f.__name__: f for f in (get_current_weather, get_capital, final_result)}[tool_name]
    agent, turn = await _play(
        server, make_agent, recorded_streams, name, text_reply("All done.", phase="final_answer"), tools=[tool]
    )
    assert turn.status == "completed", turn.error
    assert turn.text == "All done."
    [call] = of_type(turn.events, ev.ToolCall)
    assert (call.call_id, call.name, call.arguments) == (call_id, tool_name, arguments)
    [result] = of_type(turn.events, ev.ToolResult)
    assert result.output == "Potato City" and not result.is_error
    assert seen == [json.loads(arguments)]
    # The follow-up request replays the output items and the tool output.
    follow = server.api_requests[1].json["input"]
    assert follow[0]["role"] == "user"
    fc = [i for i in follow if i["type"] == "function_call"]
    assert [(i["call_id"], i["name"], i["arguments"]) for i in fc] == oracle["calls"]
    assert {"type": "function_call_output", "call_id": call_id, "output": "Potato City"} in follow
    assert all("id" not in i for i in follow)
    reasoning = [i for i in follow if i["type"] == "reasoning"]
    # Keep encrypted_content from .done (README: it differs from the .added value).
    assert [r["encrypted_content"] for r in reasoning] == [r["encrypted_content"] for r in oracle["reasoning"]]
    phases = [
        (i["content"][0]["text"], i.get("phase")) for i in follow if i["type"] == "message" and i["role"] == "assistant"
    ]
    assert phases == oracle["messages"]


async def test_phase_streams_replay_like_the_recorded_second_request(
    recorded_streams: Path, server: ScriptedServer, make_agent: Any
) -> None:
    """The follow-up after the commentary recording matches what the real client sent (recorded)."""
    recorded = json.loads((recorded_streams / "phase-final-answer-gpt-5.5.json").read_text())["request"]["body"][
        "input"
    ]
    server.add_replies_from_sse_file(recorded_streams / "phase-commentary-function-call-gpt-5.5.sse")
    server.add_replies_from_sse_file(recorded_streams / "phase-final-answer-gpt-5.5.sse")

    def get_capital(country: str) -> str:
        return "Potato City"

    agent = make_agent(model="gpt-5.5", tools=[get_capital])
    turn = await agent.ask("What is the capital of PotatoLand?")
    assert turn.status == "completed", turn.error
    assert turn.text == "The capital of PotatoLand is **Potato City**."
    sent = server.api_requests[1].json["input"]
    assert [i.get("type", "message") for i in sent] == [i.get("type", "message") for i in recorded]
    assert sent[1]["encrypted_content"] == recorded[1]["encrypted_content"]
    assert sent[2]["phase"] == recorded[2]["phase"] == "commentary"
    # README caveat: the source normalised typographic quotes in recorded request bodies.
    plain = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
    assert sent[2]["content"][0]["text"].translate(plain) == recorded[2]["content"][0]["text"]
    assert {k: sent[3][k] for k in ("call_id", "name", "arguments")} == {
        k: recorded[3][k] for k in ("call_id", "name", "arguments")
    }
    assert sent[4] == recorded[4]
    phases = [(m.phase, m.text) for m in of_type(turn.events, ev.MessageDone)]
    assert [p for p, _ in phases] == ["commentary", "final_answer"]
    assert [m["phase"] for m in agent.transcript() if m["role"] == "assistant"] == ["commentary", "final_answer"]


async def test_incomplete_stream_is_an_error_and_keeps_the_user_message(
    recorded_streams: Path, server: ScriptedServer, make_agent: Any
) -> None:
    oracle = _oracle(recorded_streams, "incomplete-max-output-tokens-gpt-4o")
    assert oracle["terminal"]["type"] == "response.incomplete"
    agent, turn = await _play(
        server, make_agent, recorded_streams, "incomplete-max-output-tokens-gpt-4o", max_retries=3
    )
    assert turn.status == "failed"
    [error] = of_type(turn.events, ev.Error)
    assert error.message == "Incomplete response returned, reason: max_output_tokens"
    assert not error.retryable
    assert len(server.api_requests) == 1  # not retried
    assert "".join(d.delta for d in of_type(turn.events, ev.TextDelta)) == oracle["text"]
    assert agent.history[0] == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
    # The next turn works.
    server.add_response(text_reply("Fine now."))
    turn2 = await agent.ask("again")
    assert turn2.status == "completed" and turn2.text == "Fine now."
    assert [i["content"][0]["text"] for i in server.api_requests[1].json["input"] if i.get("role") == "user"] == [
        "hello",
        "again",
    ]


async def test_insufficient_quota_stream_is_fatal(
    recorded_streams: Path, server: ScriptedServer, make_agent: Any
) -> None:
    oracle = _oracle(recorded_streams, "error-insufficient-quota-gpt-5")
    assert [e["type"] for e in sse_payloads(recorded_streams / "error-insufficient-quota-gpt-5.sse")][-2:] == [
        "error",
        "response.failed",
    ]
    assert oracle["usage"] is None
    agent, turn = await _play(server, make_agent, recorded_streams, "error-insufficient-quota-gpt-5", max_retries=3)
    assert turn.status == "failed"
    [error] = of_type(turn.events, ev.Error)
    assert error.message == QUOTA_MESSAGE
    assert error.code == "insufficient_quota"
    assert len(server.api_requests) == 1
    assert not of_type(turn.events, ev.UsageEvent)
    assert agent.history[0]["role"] == "user"
    assert_no_secret([e.to_dict() for e in turn.events])


def test_fixture_expectation_files_exist_for_every_stream(recorded_streams: Path) -> None:
    for name in ALL_STREAMS:
        side = recorded_streams / f"{name}.json"
        assert side.exists()
        meta = json.loads(side.read_text())
        assert meta["event_count"] == len(sse_payloads(recorded_streams / f"{name}.sse"))
