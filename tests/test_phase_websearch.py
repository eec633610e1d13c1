"""Spec §8 (``phase`` on assistant messages) and §9 (web search items, display, Azure, tool JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.config import is_azure_responses_base_url
from jupyter_agent.protocol import responses as R
from jupyter_agent.testing import Reply, ScriptedServer, function_call_reply, text_reply, web_search_reply
from jupyter_agent.testing.replies import text_events, web_search_events
from tests.sse_support import of_type


def lookup(q: str) -> str:
    return "found"


# --- §8 phase ----------------------------------------------------------------------------------


async def test_phase_preserved_in_history_and_resent(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(function_call_reply("lookup", '{"q":"x"}', preamble="Let me check the tests first."))
    server.add_response(text_reply("All good.", phase="final_answer"))
    server.add_response(text_reply("legacy answer"))  # no phase at all
    server.add_response(text_reply("ok"))
    agent = make_agent(tools=[lookup])
    turn = await agent.ask("check")
    assert turn.text == "All good."  # the commentary is not the answer
    done = of_type(turn.events, ev.MessageDone)
    assert [(m.text, m.phase) for m in done] == [
        ("Let me check the tests first.", "commentary"),
        ("All good.", "final_answer"),
    ]
    # Deltas carry the phase known from output_item.added.
    assert {d.phase for d in of_type(turn.events, ev.TextDelta)} == {"commentary", "final_answer"}
    follow = server.requests[1].json["input"]
    [commentary] = [i for i in follow if i.get("role") == "assistant"]
    assert commentary["phase"] == "commentary"
    assert commentary["content"][0]["text"] == "Let me check the tests first."
    turn2 = await agent.ask("again")
    assert turn2.text == "legacy answer" and of_type(turn2.events, ev.MessageDone)[0].phase is None
    await agent.ask("third")
    assistants = [i for i in server.requests[3].json["input"] if i.get("role") == "assistant"]
    assert [a.get("phase", "<absent>") for a in assistants] == ["commentary", "final_answer", "<absent>"]
    assert [(m["role"], m["phase"]) for m in agent.transcript() if m["role"] == "assistant"] == [
        ("assistant", "commentary"),
        ("assistant", "final_answer"),
        ("assistant", None),
        ("assistant", None),
    ]


async def test_unknown_phase_value_does_not_lose_the_message(server: ScriptedServer, make_agent: Any) -> None:
    events = text_events("Interim thoughts", phase="final_answer")
    for e in events:
        item = e.get("item")
        if isinstance(item, dict) and item.get("type") == "message":
            item["phase"] = "analysis"
    server.add_response(Reply(events=events))
    agent = make_agent()
    turn = await agent.ask("hi")
    assert turn.status == "completed" and turn.text == "Interim thoughts"
    [done] = of_type(turn.events, ev.MessageDone)
    assert done.text == "Interim thoughts" and done.phase is None
    assert [h for h in agent.history if h.get("role") == "assistant"][0]["content"][0]["text"] == "Interim thoughts"


def test_phase_on_message_items() -> None:
    item = R.parse_item(
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "x"}],
            "phase": "commentary",
        }
    )
    assert isinstance(item, R.MessageItem) and item.phase == "commentary"
    assert item.to_input()["phase"] == "commentary"
    legacy = R.parse_item({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]})
    assert isinstance(legacy, R.MessageItem) and legacy.phase is None and "phase" not in legacy.to_input()


# --- §9 web search: item shape and display -------------------------------------------------------


def ws(action: dict[str, Any] | None, status: str = "completed") -> R.WebSearchCallItem:
    data: dict[str, Any] = {"type": "web_search_call", "id": "ws_1", "status": status}
    if action is not None:
        data["action"] = action
    item = R.parse_item(data)
    assert isinstance(item, R.WebSearchCallItem)
    return item


@pytest.mark.parametrize(
    ("action", "kind", "detail"),
    [
        ({"type": "search", "query": "weather seattle"}, "search", "weather seattle"),
        ({"type": "search", "query": "q", "queries": ["a", "b"]}, "search", "q"),
        ({"type": "search", "queries": ["first", "second"]}, "search", "first ..."),
        ({"type": "search", "query": "", "queries": ["only"]}, "search", "only"),
        ({"type": "search", "query": ""}, "search", ""),
        ({"type": "search"}, "search", ""),
        ({"type": "open_page", "url": "https://example.com"}, "open_page", "https://example.com"),
        ({"type": "open_page"}, "open_page", ""),
        (
            {"type": "find_in_page", "url": "https://example.com", "pattern": "needle"},
            "find_in_page",
            "'needle' in https://example.com",
        ),
        ({"type": "find_in_page", "pattern": "needle"}, "find_in_page", "'needle'"),
        ({"type": "find_in_page", "url": "https://example.com"}, "find_in_page", "https://example.com"),
        ({"type": "screenshot", "url": "https://example.com"}, "other", ""),
    ],
)
def test_display_rules(action: dict[str, Any], kind: str, detail: str) -> None:
    item = ws(action)
    got_kind, got_detail, _ = item.display_detail()
    assert (got_kind, got_detail) == (kind, detail)


def test_partial_item_without_action_parses() -> None:
    event = R.parse_event(
        json.dumps(
            {
                "type": "response.output_item.added",
                "item": {"type": "web_search_call", "id": "ws_1", "status": "in_progress"},
            }
        )
    )
    assert isinstance(event, R.OutputItemAdded) and isinstance(event.item, R.WebSearchCallItem)
    assert event.item.action is None and event.item.display_detail()[:2] == ("other", "")


def test_unknown_action_is_other_and_kept_for_replay() -> None:
    item = ws({"type": "screenshot", "url": "u"})
    assert isinstance(item.action, R.OtherAction)
    assert item.to_input()["action"] == {"type": "screenshot", "url": "u"}


async def test_web_search_item_is_emitted(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(web_search_reply("weather seattle", call_id="web-search-1", answer="Sunny."))
    turn = await make_agent().ask("weather?")
    begin, end = of_type(turn.events, ev.WebSearch)
    assert (begin.item_id, begin.status, begin.action, begin.display_text) == (
        "web-search-1",
        "in_progress",
        None,
        "Searching the web",
    )
    assert (end.item_id, end.status, end.action, end.query, end.display_text) == (
        "web-search-1",
        "completed",
        "search",
        "weather seattle",
        "Searched weather seattle",
    )
    assert turn.text == "Sunny."
    kinds = [type(e) for e in turn.events if isinstance(e, (ev.WebSearch, ev.TextDelta))]
    assert kinds.index(ev.WebSearch) < kinds.index(ev.TextDelta)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            {"type": "open_page", "url": "https://example.com/a"},
            ("open_page", "Searched https://example.com/a", {"url": "https://example.com/a"}),
        ),
        (
            {"type": "find_in_page", "url": "https://example.com", "pattern": "needle"},
            (
                "find_in_page",
                "Searched 'needle' in https://example.com",
                {"url": "https://example.com", "pattern": "needle"},
            ),
        ),
        ({"type": "teleport"}, ("other", "Searched", {})),
        ({"type": "search", "query": ""}, ("search", "Searched", {})),
    ],
)
async def test_web_search_actions_over_the_socket(
    server: ScriptedServer, make_agent: Any, action: dict[str, Any], expected: tuple[str, str, dict[str, str]]
) -> None:
    server.add_response(web_search_reply(action=action))
    turn = await make_agent().ask("find")
    end = [w for w in of_type(turn.events, ev.WebSearch) if w.status == "completed"][0]
    kind, text, fields = expected
    assert end.action == kind and end.display_text == text
    for name, value in fields.items():
        assert getattr(end, name) == value


async def test_done_without_action_is_other(server: ScriptedServer, make_agent: Any) -> None:
    events = web_search_events()
    for e in events:
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "web_search_call":
            e["item"].pop("action")
    server.add_response(Reply(events=events))
    turn = await make_agent().ask("find")
    end = [w for w in of_type(turn.events, ev.WebSearch) if w.status == "completed"][0]
    assert end.action == "other" and end.detail == "" and end.display_text == "Searched"


async def test_web_search_items_are_resent_without_ids(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(web_search_reply("weather seattle", call_id="ws_77"))
    server.add_response(text_reply("ok"))
    agent = make_agent()
    await agent.ask("weather?")
    await agent.ask("thanks")
    [item] = [i for i in server.requests[1].json["input"] if i["type"] == "web_search_call"]
    assert item == {
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "weather seattle"},
    }
    assert agent.transcript()[1] == {"role": "tool", "text": "Searched weather seattle", "phase": None}


async def test_azure_keeps_web_search_ids(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(web_search_reply("weather seattle", call_id="ws_77"))
    server.add_response(text_reply("ok"))
    agent = make_agent(provider="azure")
    await agent.ask("weather?")
    await agent.ask("thanks")
    [item] = [i for i in server.requests[1].json["input"] if i["type"] == "web_search_call"]
    assert item["id"] == "ws_77"


# --- §9 Azure detection and the tool JSON ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://foo.openai.azure.com/openai",
        "https://foo.openai.azure.us/openai/deployments/x",
        "https://foo.cognitiveservices.azure.cn/openai",
        "https://foo.aoai.azure.com/openai",
        "https://foo.openai.azure-api.net/openai",
        "https://foo.z01.azurefd.net/",
        "https://FOO.OPENAI.AZURE.COM/openai/v1",
        "https://x.blob.core.windows.net/openai/v1",
    ],
)
def test_detects_azure_responses_base_urls(url: str) -> None:
    assert is_azure_responses_base_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://api.openai.com/v1", "https://example.com/openai", "https://myproxy.azurewebsites.net/openai", "", None],
)
def test_non_azure_base_urls(url: str | None) -> None:
    assert not is_azure_responses_base_url(url)


def test_azure_by_provider_name() -> None:
    assert is_azure_responses_base_url("http://127.0.0.1:1/v1", "Azure")
    assert not is_azure_responses_base_url("http://127.0.0.1:1/v1", "openai")


@pytest.mark.parametrize(
    ("mode", "tool"),
    [
        ("cached", {"type": "web_search", "external_web_access": False}),
        ("live", {"type": "web_search", "external_web_access": True}),
        ("disabled", None),
    ],
)
async def test_web_search_tool_json(
    server: ScriptedServer, make_agent: Any, mode: str, tool: dict[str, Any] | None
) -> None:
    server.add_response(text_reply("ok"))
    await make_agent(web_search=mode).ask("hi")
    tools = server.requests[0].json["tools"]
    assert [t for t in tools if t["type"] == "web_search"] == ([tool] if tool else [])


async def test_web_search_default_is_cached_for_openai(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("ok"))
    server.add_response(text_reply("ok"))
    await make_agent(web_search="default", provider="openai").ask("hi")
    await make_agent(web_search="default").ask("hi")  # a Responses-compatible server
    assert server.requests[0].json["tools"] == [{"type": "web_search", "external_web_access": False}]
    assert server.requests[1].json["tools"] == []
