"""The scripted server is as strict as the real API (issue 15 item 9).

(a) Every reply builder and the echo server go through openai-python's own streaming client with
    strict response validation (``_strict_response_validation=True``: every event and response
    object validated against the SDK's pydantic models) and its ``responses.stream()`` helper,
    which accumulates the output as it arrives (and raises on events out of order).
(b) Every request body the suite's scenarios send validates against ``CreateResponse``, every
    WebSocket ``response.create`` frame against ``ResponsesClientEventResponseCreate`` and every
    realtime client frame against ``RealtimeClientEvent``, from OpenAI's published schemas
    (``../shared/fixtures/openai-spec``), with the deliberate deviations listed in ``ALLOWED``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

openai = pytest.importorskip("openai", reason="openai-python is in the test extra: pip install -e '.[test]'")

from jupyter_agent.testing import Reply, ScriptedServer, echo_responder  # noqa: E402
from jupyter_agent.testing.replies import (  # noqa: E402
    failed_reply,
    function_call_reply,
    incomplete_reply,
    text_reply,
    web_search_reply,
)

BUILDERS: dict[str, Callable[[], Reply]] = {
    "text_reply": lambda: text_reply("Hello there, strict client.", chunks=4),
    "text_reply phase": lambda: text_reply("Final words.", phase="final_answer"),
    "function_call_reply": lambda: function_call_reply("lookup", '{"key": "a"}', call_id="call_9"),
    "function_call_reply preamble": lambda: function_call_reply("lookup", '{"key": "b"}', preamble="Let me check."),
    "web_search_reply": lambda: web_search_reply("weather in Paris", answer="Sunny."),
    "failed_reply": lambda: failed_reply("server_error", "boom"),
    "incomplete_reply": lambda: incomplete_reply("max_output_tokens"),
    "incomplete_reply text": lambda: incomplete_reply("max_output_tokens", text="partial answer"),
}
TERMINAL = {"response.completed", "response.failed", "response.incomplete"}
#: Where the live API and openai-python's models disagree, the scripted server follows the live API:
#: (event type, item type) -> why. The recorded stream ``web-search-gpt-5.sse`` shows it.
STREAM_DEVIATIONS = {
    ("response.output_item.added", "web_search_call"): "the live API sends no `action` until the search is done",
}


def _event_models() -> dict[str, Any]:
    """openai-python's model for every Responses stream event type."""
    import typing

    from openai.types.responses import ResponseStreamEvent

    union = typing.get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], discriminator]
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in typing.get_args(union)}


def _client(server: ScriptedServer, *, strict: bool = True) -> Any:
    return openai.OpenAI(
        base_url=server.base_url, api_key="sk-conformance", max_retries=0, _strict_response_validation=strict
    )


def _deviates(builder: str) -> bool:
    return builder.startswith("web_search")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_scripted_event_validates_against_openai_python(name: str) -> None:
    """Each event of each builder against the SDK's pydantic model for its type (strict validation)."""
    from pydantic import ValidationError

    models = _event_models()
    for event in BUILDERS[name]().events:
        item_type = event.get("item", {}).get("type") if isinstance(event.get("item"), dict) else None
        if (event["type"], item_type) in STREAM_DEVIATIONS:
            continue
        assert event["type"] in models, event["type"]
        try:
            models[event["type"]].model_validate(event)
        except ValidationError as exc:
            pytest.fail(f"{name}: {event['type']} does not validate: {exc.errors()[:3]}")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_reply_builders_stream_through_openai_python(server: ScriptedServer, name: str) -> None:
    """The SDK's own client over a real socket: strict per-event validation (except the documented
    deviation), and the ``responses.stream()`` helper that accumulates the response as it streams."""
    server.add_response(BUILDERS[name]())
    server.add_response(BUILDERS[name]())
    client = _client(server, strict=not _deviates(name))
    raw = list(client.responses.create(model="gpt-5", input="hi", stream=True))
    assert raw[0].type == "response.created" and raw[-1].type in TERMINAL
    assert [e.sequence_number for e in raw] == list(range(len(raw)))
    with client.responses.stream(model="gpt-5", input="hi") as stream:  # raises on events out of order
        events = list(stream)
        assert [e.type for e in events if e.type in TERMINAL] == [raw[-1].type]
        if raw[-1].type == "response.completed":
            final = stream.get_final_response()
            assert final.status == "completed" and final.output
            streamed = "".join(e.delta for e in raw if e.type == "response.output_text.delta")
            assert final.output_text == streamed


def test_echo_server_passes_openai_python_strict_streaming() -> None:
    with ScriptedServer(responder=echo_responder) as server:
        client = _client(server)
        with client.responses.stream(model="gpt-5", input="ping pong") as stream:
            list(stream)
            final = stream.get_final_response()
        assert final.output_text == 'You said: "ping pong"'
        warm = list(client.responses.create(model="gpt-5", input=[], stream=True, extra_body={"generate": False}))
        assert [e.type for e in warm] == ["response.created", "response.completed"]


# --- (b) what the client sends, against OpenAI's published schemas -------------------------------


def _add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


def _tag(labels: dict[str, str]) -> str:
    """Free-form labels (a strict: false tool)."""
    return ",".join(labels)


FEATURES: dict[str, dict[str, Any]] = {
    "plain": {},
    "strict and non-strict tools": {"tools": [_add, _tag]},
    "reasoning": {"reasoning_effort": "high", "reasoning_summary": "detailed"},
    "live web search": {"web_search": "live"},
    "cached web search, no parallel calls": {"web_search": "cached", "parallel_tool_calls": False},
    "max_output_tokens": {"max_output_tokens": 256},
}


@pytest.mark.parametrize("transport", ["sse", "websocket"])
@pytest.mark.parametrize("feature", list(FEATURES))
def test_request_bodies_conform_to_create_response(openai_spec: dict, feature: str, transport: str) -> None:
    """A tool round-trip and a second turn (history with commentary, calls, outputs, reasoning,
    web search) for each feature; on the WebSocket with prewarm (``generate: false``) and
    incremental requests. Every body validates (``tests/wire_schema.py`` lists the deviations)."""
    import asyncio

    from jupyter_agent.agent import Agent
    from jupyter_agent.testing import WsConn, text_events
    from jupyter_agent.testing.replies import function_call_events, web_search_events

    from .fault_scenarios import sent_bodies
    from .wire_schema import WireSchema

    schema = WireSchema(openai_spec)
    first = function_call_events("_add", '{"a": 1, "b": null}', call_id="call_1", preamble="Adding.")
    answers = [first, text_events("3", phase="final_answer"), web_search_events("weather")]
    with ScriptedServer() as server:
        if transport == "sse":
            server.add_responses(*(Reply(events=list(e)) for e in answers))
        else:
            warm = [{"type": "response.created", "response": {"id": "warm-1"}}]
            warm.append({"type": "response.completed", "response": {"id": "warm-1", "output": []}})
            server.add_ws_connection(WsConn(requests=[warm, *answers]))
        agent = Agent(
            model="gpt-5",
            base_url=server.base_url,
            api_key="sk-conformance",
            provider="openai",
            transport=transport,
            prewarm=transport == "websocket",
            **{"tools": [_add], **FEATURES[feature]},
        )
        if transport == "websocket":
            assert server.wait_for(lambda: server.ws_connections and server.ws_connections[0].frames, 10)
        assert asyncio.run(agent.ask("add 1")).status == "completed"
        assert asyncio.run(agent.ask("and the weather?")).status == "completed"
        bodies = sent_bodies(server)
    assert len(bodies) == (3 if transport == "sse" else 4)
    problems = [p for kind, body in bodies for p in schema.errors(kind, body)]
    assert not problems, problems
    tools = [t for t in bodies[-1][1]["tools"] if t["type"] == "function"]
    assert tools and all(isinstance(t["strict"], bool) for t in tools)


def test_unknown_output_items_are_not_replayed(server: ScriptedServer, make_agent: Any, openai_spec: dict) -> None:
    """An item type the API does not take as input is kept out of the next request (else every later
    request fails with 400); a known one (``code_interpreter_call``) is replayed."""
    import asyncio

    from jupyter_agent.testing import text_events

    from .wire_schema import WireSchema

    events = text_events("Hi.", phase="final_answer")
    mystery = {"type": "mystery_tool_call", "id": "mt_1", "status": "completed"}
    code = {"type": "code_interpreter_call", "id": "ci_1", "status": "completed", "code": "1+1", "container_id": "c"}
    code["outputs"] = None
    extra = [{"type": "response.output_item.done", "output_index": 1, "item": i} for i in (mystery, code)]
    server.add_response(Reply(events=[*events[:-1], *extra, events[-1]]))
    server.add_response(Reply(events=list(text_events("Again.", phase="final_answer"))))
    agent = make_agent()
    asyncio.run(agent.ask("one"))
    asyncio.run(agent.ask("two"))
    replayed = [i["type"] for i in server.requests[-1].json["input"]]
    assert "mystery_tool_call" not in replayed and "code_interpreter_call" in replayed
    assert not WireSchema(openai_spec).errors("http", server.requests[-1].json)


def test_realtime_client_frames_conform_to_realtime_client_event(openai_spec: dict) -> None:
    """Every frame of a GA realtime conversation (session.update, audio, text item, response.create,
    instructions update, truncate) validates against ``RealtimeClientEvent``."""
    import asyncio

    from jupyter_agent.protocol import realtime as P
    from jupyter_agent.realtime import RealtimeConversationManager, RealtimeSessionConfig
    from jupyter_agent.testing.realtime import RealtimeConn, RealtimeServer, RtSend, ga_session_created

    from .wire_schema import WireSchema

    schema = WireSchema(openai_spec)

    async def talk(rs: RealtimeServer) -> None:
        cfg = RealtimeSessionConfig(url=rs.openai_base_url, dialect="openai", prompt="be brief", model="gpt-realtime")
        mgr = RealtimeConversationManager(cfg, lambda _e: None)
        await mgr.start(conversation_id="conv_1")
        await mgr.insert_audio(P.RealtimeAudioFrame.from_pcm(b"\x00\x00" * 480))
        await mgr.insert_text("hello")
        await mgr.update_prompt("be briefer")
        await mgr.truncate("item_1", 120)
        await asyncio.sleep(0.3)
        await mgr.close()

    with RealtimeServer() as rs:
        rs.add(RealtimeConn([RtSend(ga_session_created())]))
        asyncio.run(talk(rs))
        frames = [f for f in rs.records[0].frames if isinstance(f, dict)]
    kinds = {f["type"] for f in frames}
    assert {"session.update", "input_audio_buffer.append", "conversation.item.create"} <= kinds, kinds
    assert "conversation.item.truncate" in kinds, kinds
    problems = [p for f in frames for p in schema.errors("realtime", f)]
    assert not problems, problems
