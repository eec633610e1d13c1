"""Spec §4: server model (``openai-model``) and the once-per-turn reroute warning, over SSE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from jupyter_agent import events as ev
from jupyter_agent.protocol import responses as R
from jupyter_agent.testing import Reply, ScriptedServer, function_call_reply, text_reply
from jupyter_agent.testing.replies import text_events
from jupyter_agent.transport.base import EventServerModel, ResponseHeaders
from jupyter_agent.transport.sse import SseTransport
from tests.sse_support import of_type


def with_created_headers(events: list[dict[str, Any]], headers: dict[str, Any]) -> list[dict[str, Any]]:
    """``response.created`` carrying ``response.headers`` (event-level server model)."""
    events = json.loads(json.dumps(events))
    events[0]["response"]["headers"] = headers
    return events


def _text(item: dict[str, Any]) -> str:
    content = item["content"]
    return content if isinstance(content, str) else content[0]["text"]  # a warning's content is a string


def user_texts(body: dict[str, Any]) -> list[str]:
    return [_text(i) for i in body["input"] if i.get("type") == "message" and i.get("role") == "user"]


async def stream_once(server: ScriptedServer, reply: Reply) -> list[Any]:
    server.add_response(reply)
    async with httpx.AsyncClient() as client:
        t = SseTransport(client, server.base_url + "/responses")
        return [e async for e in t.stream({"model": "gpt-5"}, {}, idle_timeout=5)]


# --- transport: where the server model comes from ------------------------------------------


async def test_stream_emits_server_model_header_first(server: ScriptedServer) -> None:
    events = await stream_once(server, text_reply("hi", headers={"OpenAI-Model": "gpt-5.2"}))
    assert isinstance(events[0], ResponseHeaders) and events[0].server_model == "gpt-5.2"
    assert not any(isinstance(e, EventServerModel) for e in events)


async def test_response_model_field_is_ignored(server: ScriptedServer) -> None:
    events = await stream_once(server, text_reply("hi", model="gpt-4o-other"))
    assert events[0].server_model is None
    assert not any(isinstance(e, EventServerModel) for e in events)


async def test_server_model_from_response_headers_precedes_created(server: ScriptedServer) -> None:
    evs = with_created_headers(text_events("hi"), {"OpenAI-Model": "gpt-5.2"})
    events = await stream_once(server, Reply(events=evs))
    kinds = [type(e) for e in events[:3]]
    assert kinds == [ResponseHeaders, EventServerModel, R.ResponseCreated]
    assert events[1].model == "gpt-5.2"


async def test_header_value_does_not_seed_change_detection(server: ScriptedServer) -> None:
    evs = with_created_headers(text_events("hi"), {"openai-model": "gpt-5.2"})
    events = await stream_once(server, Reply(headers={"openai-model": "gpt-5.2"}, events=evs))
    assert [e.model for e in events if isinstance(e, EventServerModel)] == ["gpt-5.2"]


async def test_mid_stream_change_emitted_only_when_different(server: ScriptedServer) -> None:
    evs = [
        {"type": "codex.response.metadata", "headers": {"x-openai-model": "gpt-5.2"}},
        {"type": "codex.response.metadata", "headers": {"openai-model": ["gpt-5.2"]}},
        {"type": "codex.response.metadata", "headers": {"openai-model": "gpt-5.3"}},
        *text_events("hi"),
    ]
    events = await stream_once(server, Reply(events=evs))
    assert [e.model for e in events if isinstance(e, EventServerModel)] == ["gpt-5.2", "gpt-5.3"]


def test_top_level_headers_and_precedence() -> None:
    top = R.parse_event(json.dumps({"type": "codex.response.metadata", "headers": {"openai-model": "gpt-5.2"}}))
    assert R.event_server_model(top) == "gpt-5.2"
    both = R.parse_event(
        json.dumps({"type": "response.created", "response": {"id": "r", "headers": {"OpenAI-Model": "from-response"}}})
    )
    assert R.event_server_model(both) == "from-response"
    # response.headers wins over a top-level headers object in the same event
    raw = {
        "type": "response.created",
        "headers": {"openai-model": "top"},
        "response": {"id": "r", "headers": {"openai-model": "inner"}},
    }
    assert R.event_server_model(R.parse_event(json.dumps(raw))) == "inner"
    assert (
        R.event_server_model(
            R.parse_event(json.dumps({"type": "response.created", "response": {"id": "r", "model": "x"}}))
        )
        is None
    )


# --- agent: the warning ----------------------------------------------------------------------


async def test_header_mismatch_emits_reroute_warning_and_warning_item(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", headers={"openai-model": "gpt-5.2"}))
    server.add_response(text_reply("again"))
    agent = make_agent(model="gpt-5.3-codex")
    turn = await agent.ask("hello")
    [warning] = of_type(turn.events, ev.RerouteWarning)
    assert (warning.from_model, warning.to_model) == ("gpt-5.3-codex", "gpt-5.2")
    assert "gpt-5.3-codex" in warning.message and "gpt-5.2" in warning.message
    assert [e.model for e in of_type(turn.events, ev.ServerModel)] == ["gpt-5.2"]
    warnings = [h for h in agent.history if h.get("role") == "user" and _text(h).startswith("Warning: ")]
    assert warnings == [{"type": "message", "role": "user", "content": f"Warning: {warning.message}"}]
    assert [m["role"] for m in agent.transcript()].count("warning") == 1
    # The warning is sent to the model on later requests.
    await agent.ask("next")
    assert user_texts(server.requests[1].json) == ["hello", f"Warning: {warning.message}", "next"]


async def test_event_level_response_headers_win(server: ScriptedServer, make_agent: Any) -> None:
    evs = with_created_headers(text_events("hi"), {"OpenAI-Model": "gpt-5.2"})
    server.add_response(Reply(headers={"openai-model": "gpt-5.3-codex"}, events=evs))
    turn = await make_agent(model="gpt-5.3-codex").ask("hello")
    [warning] = of_type(turn.events, ev.RerouteWarning)
    assert warning.to_model == "gpt-5.2"


async def test_top_level_headers_event_warns(server: ScriptedServer, make_agent: Any) -> None:
    evs = [{"type": "codex.response.metadata", "headers": {"openai-model": "gpt-5.2"}}, *text_events("hi")]
    server.add_response(Reply(events=evs))
    turn = await make_agent(model="gpt-5.3-codex").ask("hello")
    assert [w.to_model for w in of_type(turn.events, ev.RerouteWarning)] == ["gpt-5.2"]


async def test_casing_only_mismatch_does_not_warn(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", headers={"openai-model": "GPT-5.3-Codex"}))
    agent = make_agent(model="gpt-5.3-codex")
    turn = await agent.ask("hello")
    assert not of_type(turn.events, ev.RerouteWarning)
    assert not any(_text(h).startswith("Warning: ") for h in agent.history if h.get("role") == "user")


async def test_matching_model_does_not_warn(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("hi", headers={"openai-model": "gpt-5"}))
    turn = await make_agent(model="gpt-5").ask("hello")
    assert not of_type(turn.events, ev.RerouteWarning)


async def test_one_warning_per_turn_across_tool_follow_ups(server: ScriptedServer, make_agent: Any) -> None:
    headers = {"openai-model": "gpt-5.2"}
    server.add_response(function_call_reply("lookup", '{"q":"a"}', call_id="c1", headers=headers))
    server.add_response(function_call_reply("lookup", '{"q":"b"}', call_id="c2", headers=headers))
    server.add_response(text_reply("done", headers=headers))
    server.add_response(text_reply("turn two", headers=headers))

    def lookup(q: str) -> str:
        return q.upper()

    agent = make_agent(model="gpt-5.3-codex", tools=[lookup])
    turn = await agent.ask("hello")
    assert turn.status == "completed" and len(server.requests) == 3
    assert len(of_type(turn.events, ev.RerouteWarning)) == 1
    assert sum(t.startswith("Warning: ") for t in user_texts(server.requests[2].json)) == 1
    # The flag is per turn: the next turn warns again.
    turn2 = await agent.ask("again")
    assert len(of_type(turn2.events, ev.RerouteWarning)) == 1


async def test_retry_shares_the_turn_flag(server: ScriptedServer, make_agent: Any) -> None:
    headers = {"openai-model": "gpt-5.2"}
    server.add_response(Reply(headers=headers, events=text_events("partial")[:3], fault=("drop_after", 3)))
    server.add_response(text_reply("whole", headers=headers))
    turn = await make_agent(model="gpt-5.3-codex", max_retries=1).ask("hello")
    assert turn.status == "completed" and turn.text == "whole"
    assert len(of_type(turn.events, ev.Retry)) == 1
    assert len(of_type(turn.events, ev.RerouteWarning)) == 1


async def test_user_text_cannot_pass_for_a_warning(server: ScriptedServer, make_agent: Any) -> None:
    """Issue 15 item 11: a prompt that starts with "Warning: " is the user's, in the transcript, the
    panel's history and a resumed conversation; only the agent's own reroute warning is a warning."""
    from jupyter_agent.store import StoredConversation

    server.add_response(text_reply("Noted.", phase="final_answer"))
    server.add_response(text_reply("hi", headers={"openai-model": "gpt-5.2"}))
    agent = make_agent(model="gpt-5.3-codex")
    await agent.ask("Warning: the server model changed (I typed this)")
    await agent.ask("hello")
    roles = [(m["role"], m["text"][:12]) for m in agent.transcript()]
    assert roles[0] == ("user", "Warning: the")
    assert [r for r, _ in roles].count("warning") == 1 and roles[-2][0] == "warning"
    saved = StoredConversation(id="c", path=Path("c.jsonl"), created=0.0, notebook="nb", items=list(agent.history))
    assert saved.user_messages == ["Warning: the server model changed (I typed this)", "hello"]
