"""Issue 14: compaction by threshold (SSE and WebSocket), ``%agent compact``, one-time recovery from
``context_length_exceeded``, a failed compaction leaving history intact, resume after compaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.agent.compaction import SUMMARY_PREFIX, CompactionFailed
from jupyter_agent.store import ConversationStore
from jupyter_agent.testing import ScriptedServer, WsConn, text_reply
from jupyter_agent.testing.replies import error_reply, text_events, usage

MODEL = "gpt-5"


def _bodies(server: ScriptedServer) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.find_requests("POST", "/responses")]


def _of(turn: Any, kind: type) -> list[Any]:
    return [e for e in turn.events if isinstance(e, kind)]


def _texts(items: list[dict[str, Any]]) -> list[str]:
    out = []
    for i in items:
        c = i.get("content")
        out.append(c if isinstance(c, str) else "".join(p.get("text", "") for p in c or []))
    return out


def _reply(text: str, tokens: int = 100) -> Any:
    return text_reply(text, model=MODEL, phase="final_answer", usage_obj=usage(tokens, 10))


async def _two_turns(agent: Agent, server: ScriptedServer) -> None:
    server.add_responses(_reply("one done", 300), _reply("two done", 900))
    await agent.ask("first question")
    await agent.ask("second question")


async def test_threshold_compacts_with_a_summary_request_over_sse(server: ScriptedServer, make_agent: Any) -> None:
    agent = make_agent(model=MODEL, provider="compatible", context_window=1000, compact_threshold=0.8)
    await _two_turns(agent, server)  # the second request used 900 of 1000 tokens
    server.add_responses(_reply("summary: the user asked two questions", 50), _reply("three done", 200))
    turn = await agent.ask("third question")
    assert turn.status == "completed" and turn.text == "three done"
    (done,) = _of(turn, ev.Compacted)
    assert (done.reason, done.method, done.items_before, done.input_tokens_before) == ("threshold", "summary", 5, 900)
    summary_req, real = _bodies(server)[2:]
    assert summary_req["tools"] == [] and "first question" in summary_req["input"][0]["content"][0]["text"]
    # Summary first, the earlier prompts kept verbatim, then the turn that is running.
    assert _texts(real["input"]) == [
        SUMMARY_PREFIX + "summary: the user asked two questions",
        "first question",
        "second question",
        "third question",
    ]
    assert agent.history[0]["content"].startswith(SUMMARY_PREFIX)
    assert "[conversation compacted" in agent.transcript()[0]["text"]
    assert _of(turn, ev.ContextGauge)[-1].input_tokens == 200  # the gauge falls back


async def test_threshold_compacts_over_websocket_then_a_new_chain(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[
                text_events(
                    "one done", response_id="resp-1", model=MODEL, phase="final_answer", usage_obj=usage(900, 10)
                ),
                text_events(
                    "two done", response_id="resp-2", model=MODEL, phase="final_answer", usage_obj=usage(120, 10)
                ),
                text_events(
                    "three done", response_id="resp-3", model=MODEL, phase="final_answer", usage_obj=usage(150, 10)
                ),
            ],
            close_after_requests=False,
        )
    )
    agent = Agent(
        model=MODEL,
        base_url=server.base_url,
        provider="openai",
        api_key="sk-ws-test",
        transport="websocket",
        prewarm=False,
        web_search="disabled",
        context_window=1000,
        compact_threshold=0.85,
    )
    try:
        await agent.ask("first question")
        turn2 = await agent.ask("second question")
        await agent.ask("third question")
    finally:
        agent.reset()  # closes the session and its socket
    (done,) = _of(turn2, ev.Compacted)
    assert done.method == "responses/compact" and done.reason == "threshold"
    (compact_req,) = server.find_requests("POST", "/responses/compact")
    assert compact_req.json["model"] == MODEL and _texts(compact_req.json["input"]) == ["first question", "one done"]
    (rec,) = server.ws_connections  # compaction keeps the connection
    first, second, third = rec.frames
    assert "previous_response_id" not in second  # a new chain with the full compacted input
    assert [i["type"] for i in second["input"]] == ["message", "compaction", "message"]
    assert _texts([second["input"][0], second["input"][2]]) == ["first question", "second question"]
    assert third["previous_response_id"] == "resp-2"  # then incremental again
    assert _texts(third["input"]) == ["third question"]


async def test_agent_compact_on_openai_uses_the_endpoint(server: ScriptedServer, make_agent: Any) -> None:
    agent = make_agent(model=MODEL, provider="openai")
    await _two_turns(agent, server)
    version = agent.history_version
    done = agent.compact()
    assert done.reason == "requested" and done.method == "responses/compact"
    assert [i["type"] for i in agent.history] == ["message", "compaction", "message", "message"]
    assert _texts([agent.history[0], *agent.history[2:]]) == ["first question", "second question", "two done"]
    assert agent.history_version == version + 1
    server.add_response(_reply("three done"))
    await agent.ask("third question")
    sent = _bodies(server)[-1]["input"]
    assert sent[1]["type"] == "compaction" and "id" not in sent[1] and sent[1]["encrypted_content"]


async def test_recovery_from_context_length_exceeded_happens_once(server: ScriptedServer, make_agent: Any) -> None:
    agent = make_agent(model=MODEL, provider="compatible", context_window=10_000)  # 900 used: below the threshold
    await _two_turns(agent, server)
    too_long = error_reply(
        400,
        "Your input exceeds the context window of this model.",
        code="context_length_exceeded",
        type="invalid_request_error",
    )
    server.add_responses(too_long, _reply("a summary", 50), _reply("three done"))
    turn = await agent.ask("third question")
    assert turn.status == "completed" and turn.text == "three done"
    (done,) = _of(turn, ev.Compacted)
    assert done.reason == "context_length_exceeded"
    gauges = _of(turn, ev.ContextGauge)
    assert gauges[0].input_tokens == 10_000  # the failed request counts as the whole window
    assert len(_bodies(server)) == 5  # 2 turns, the failed request, the summary, the retry
    assert _texts(_bodies(server)[-1]["input"])[-1] == "third question"


async def test_recovery_fails_once_with_one_clear_error(server: ScriptedServer, make_agent: Any) -> None:
    agent = make_agent(model=MODEL, provider="compatible", context_window=10_000)  # 900 used: below the threshold
    await _two_turns(agent, server)
    too_long = error_reply(
        400, "Your input exceeds the context window.", code="context_length_exceeded", type="invalid_request_error"
    )
    server.add_responses(too_long, _reply("a summary", 50), too_long, _reply("never used"))
    turn = await agent.ask("third question")
    assert turn.status == "failed"
    (error,) = _of(turn, ev.Error)
    assert error.code == "context_length_exceeded"
    assert error.message.startswith(
        "Your input exceeds the context window (still, after compacting the conversation once)"
    )
    assert len(_of(turn, ev.Compacted)) == 1 and len(_bodies(server)) == 5  # fail, summary, fail: no loop
    assert server.pending_replies == 1
    assert _texts(agent.history)[-1] == "third question"  # the user's message is kept


async def test_failed_compaction_leaves_history_exactly_as_it_was(server: ScriptedServer, make_agent: Any) -> None:
    agent = make_agent(model=MODEL, provider="compatible")
    await _two_turns(agent, server)
    before, version = json.dumps(agent.history), agent.history_version
    server.add_response(error_reply(400, "bad summary request", type="invalid_request_error"))
    with pytest.raises(CompactionFailed, match="summary request failed"):
        agent.compact()
    assert json.dumps(agent.history) == before and agent.history_version == version
    openai = make_agent(model=MODEL, provider="openai")
    server.add_responses(_reply("one"), _reply("two"))
    await openai.ask("q1")
    await openai.ask("q2")
    before = json.dumps(openai.history)
    server.add_route("POST", "/v1/responses/compact", error_reply(500, "compaction is down"))
    with pytest.raises(CompactionFailed, match="HTTP 500"):
        openai.compact()
    assert json.dumps(openai.history) == before


async def test_too_long_and_compaction_fails_is_one_clear_error(server: ScriptedServer, make_agent: Any) -> None:
    agent = make_agent(model=MODEL, provider="compatible")
    server.add_response(
        error_reply(
            400, "Your input exceeds the context window.", code="context_length_exceeded", type="invalid_request_error"
        )
    )
    turn = await agent.ask("a first question that is already too long")
    (error,) = _of(turn, ev.Error)
    assert error.message.startswith(
        "Your input exceeds the context window; compacting the conversation to fit failed "
        "(nothing older than the latest turn to compact)"
    )
    assert _texts(agent.history) == ["a first question that is already too long"]


async def test_resume_continues_from_the_compacted_history(
    server: ScriptedServer, make_agent: Any, tmp_path: Any
) -> None:
    store = ConversationStore(tmp_path, "n.ipynb")
    agent = make_agent(model=MODEL, provider="compatible")
    agent.attach_store(store)
    await _two_turns(agent, server)
    server.add_response(_reply("the summary", 40))
    agent.compact()
    compacted = json.dumps(agent.history)
    store.sync()
    other = make_agent(model=MODEL, provider="compatible")
    other.attach_store(ConversationStore(tmp_path, "n.ipynb"))
    conv = other.resume(agent.conversation_id)
    assert conv is not None and json.dumps(other.history) == compacted
    server.add_response(_reply("three done"))
    await other.ask("third question")
    assert _texts(_bodies(server)[-1]["input"])[0] == SUMMARY_PREFIX + "the summary"
