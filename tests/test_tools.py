"""Kernel tools, user tools, the tool follow-up loop, parallel calls and web search modes."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from jupyter_agent import events as ev
from jupyter_agent.config import Provider, is_azure_responses_base_url
from jupyter_agent.testing.replies import error_reply, text_reply
from jupyter_agent.tools.base import FunctionTool
from jupyter_agent.tools.kernel import describe_text, kernel_tools, list_variables_text, run_code

from .sse_support import of_type
from .tool_support import calls_reply, outputs

# --- the kernel tools on a namespace --------------------------------------------------------


def test_run_code_output_result_and_namespace():
    ns: dict = {}
    out = run_code("x = 21\nprint('hello')\nx * 2", ns)
    assert out == "[stdout]\nhello\n[result]\n42"
    assert ns["x"] == 21 and ns["_"] == 42
    assert run_code("y = x + 1", ns) == "(no output)" and ns["y"] == 22


def test_run_code_traceback_shows_user_code_only():
    out = run_code("def f():\n    return 1 / 0\nf()", {})
    assert out.startswith("[error]\nTraceback (most recent call last):")
    assert "return 1 / 0" in out and "ZeroDivisionError: division by zero" in out
    assert "kernel.py" not in out  # the tool's own frames are dropped
    assert run_code("def (:", {}).startswith("[error]")
    assert "SyntaxError" in run_code("def (:", {})
    assert "SystemExit: 3" in run_code("raise SystemExit(3)", {})


def test_run_code_truncates_long_output():
    out = run_code("print('a' * 50_000)", {})
    assert len(out) < 10_000 and "characters truncated" in out


def test_list_and_describe_variables():
    ns = {
        "df": pd.DataFrame({"x": [1.0, 2.0, 6.0], "name": ["a", "b", "c"]}),
        "arr": np.arange(12).reshape(3, 4),
        "n": 3,
        "_private": 1,
        "np": np,
        "In": [],
    }
    listing = list_variables_text(ns)
    assert listing.splitlines() == [
        "arr: numpy.ndarray shape=(3, 4) dtype=int64",
        "df: pandas.DataFrame shape=(3, 2) columns=[x, name]",
        "n: int 3",
    ]
    desc = describe_text("df", ns)
    assert "dtypes:" in desc and "x       float64" in desc and "head(5):" in desc and "6.0" in desc
    assert "min=" in describe_text("arr", ns) and "max=" in describe_text("arr", ns)
    assert describe_text("df.x", ns).startswith("df.x: pandas.Series length=3 dtype=float64")
    assert describe_text("nope", ns) == "Error: no variable named 'nope'"
    assert describe_text("df.x()", ns).startswith("Error:")  # nothing is evaluated


def test_kernel_tool_specs_and_policies():
    tools = {t.name: t for t in kernel_tools({})}
    assert tools["run_python"].approval == "ask" and tools["run_python"].runs_code
    assert tools["list_variables"].approval == "auto" and tools["describe_variable"].approval == "auto"
    assert tools["run_python"].parameters["required"] == ["code"]
    assert tools["describe_variable"].spec()["parameters"]["properties"] == {"name": {"type": "string"}}


class Point(BaseModel):
    x: float
    y: float


def test_user_tool_schema_from_type_hints_and_pydantic():
    def distance(a: Point, b: Point, unit: Literal["m", "km"] = "m") -> float:
        """Distance between two points."""
        return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5

    tool = FunctionTool.from_callable(distance)
    params = tool.parameters
    assert params["required"] == ["a", "b"]
    assert params["properties"]["unit"]["enum"] == ["m", "km"]
    assert tool.description == "Distance between two points."
    result = asyncio.run(tool.invoke(json.dumps({"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}})))
    assert result == ("5.0", False)
    text, is_error = asyncio.run(tool.invoke('{"a": {"x": 0}}'))
    assert is_error and text.startswith("Invalid arguments for distance")


# --- the agent loop ----------------------------------------------------------------------------


def test_model_calls_the_code_tool_and_answers(server, make_agent):
    ns: dict = {"df": pd.DataFrame({"x": [1, 2, 6]})}
    agent = make_agent(tools=kernel_tools(ns))
    agent.set_approval("run_python", "auto")
    server.add_response(calls_reply(("describe_variable", {"name": "df"}, "c1"), preamble="Let me look at df."))
    server.add_response(calls_reply(("run_python", {"code": "m = df['x'].mean()\nm"}, "c2")))
    server.add_response(text_reply("The mean of x is 3.0.", phase="final_answer"))
    turn = asyncio.run(agent.ask("what is the mean of column x in df?"))
    assert turn.status == "completed" and turn.text == "The mean of x is 3.0."
    second, third = server.requests[1].json, server.requests[2].json
    assert "x    int64" in outputs(second)["c1"]
    assert outputs(third)["c2"] == "[result]\nnp.float64(3.0)"  # what the cell would show
    assert ns["m"] == 3.0  # it ran in the user's namespace
    kinds = [i["type"] for i in third["input"]]
    assert kinds == [
        "message",
        "message",
        "function_call",
        "function_call_output",
        "function_call",
        "function_call_output",
    ]
    assert third["input"][1]["phase"] == "commentary"
    assert {t["name"] for t in third["tools"] if t["type"] == "function"} == {
        "run_python",
        "list_variables",
        "describe_variable",
    }
    results = of_type(turn.events, ev.ToolResult)
    assert [r.is_error for r in results] == [False, False]


def test_tool_that_raises_goes_back_to_the_model(server, make_agent):
    def fetch(url: str) -> str:
        raise ConnectionError(f"cannot reach {url}")

    agent = make_agent(tools=[fetch])
    server.add_response(calls_reply(("fetch", {"url": "http://x"}, "c1")))
    server.add_response(calls_reply(("fetch", '{"url": 5', "c2"), ("missing_tool", {}, "c3")))
    server.add_response(text_reply("I could not fetch it.", phase="final_answer"))
    turn = asyncio.run(agent.ask("fetch x"))
    assert turn.status == "completed"
    assert outputs(server.requests[1].json)["c1"] == "Error: ConnectionError: cannot reach http://x"
    out = outputs(server.requests[2].json)
    assert out["c2"].startswith("Invalid arguments for fetch") and out["c3"] == "Unknown tool: missing_tool"
    assert all(r.is_error for r in of_type(turn.events, ev.ToolResult))
    assert not of_type(turn.events, ev.Error)


def test_parallel_calls_run_concurrently(server, make_agent):
    both_started = asyncio.Event()
    started: list[str] = []

    async def wait_for_peer(name: str) -> str:
        """Returns once both calls run at the same time."""
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 5)
        return f"{name} done"

    agent = make_agent(tools=[wait_for_peer])
    server.add_response(calls_reply(("wait_for_peer", {"name": "a"}, "ca"), ("wait_for_peer", {"name": "b"}, "cb")))
    server.add_response(text_reply("both done", phase="final_answer"))
    turn = asyncio.run(agent.ask("go"))
    assert turn.status == "completed"
    body = server.requests[1].json
    assert body["parallel_tool_calls"] is True
    assert outputs(body) == {"ca": "a done", "cb": "b done"}
    # the outputs follow the calls, in the model's order
    kinds = [(i["type"], i.get("call_id")) for i in body["input"][1:]]
    assert kinds == [
        ("function_call", "ca"),
        ("function_call", "cb"),
        ("function_call_output", "ca"),
        ("function_call_output", "cb"),
    ]


# --- web search ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://foo.openai.azure.com/openai",
        "https://foo.openai.azure.us/openai/v1",
        "https://foo.cognitiveservices.azure.cn/x",
        "https://foo.aoai.azure.com/openai",
        "https://foo.openai.azure-api.net/openai",
        "https://foo.z01.azurefd.net/",
        "https://acct.blob.core.windows.net/openai/v1",
    ],
)
def test_azure_detected(url):
    assert is_azure_responses_base_url(url)
    assert Provider(name="compatible", base_url=url).is_azure


@pytest.mark.parametrize(
    "url", ["https://api.openai.com/v1", "https://example.com/openai", "https://myproxy.azurewebsites.net/openai"]
)
def test_not_azure(url):
    assert not is_azure_responses_base_url(url)
    assert is_azure_responses_base_url(url, "Azure") and is_azure_responses_base_url(url, " azure ")


def test_web_search_modes(make_agent):
    agent = make_agent(web_search="default")
    openai = Provider(name="openai", base_url="https://api.openai.com/v1")
    azure = Provider(name="compatible", base_url="https://foo.openai.azure.com/openai/v1")
    other = Provider(name="compatible", base_url="http://127.0.0.1:1/v1")
    assert agent.tool_specs(openai)[-1] == {"type": "web_search", "external_web_access": False}
    assert agent.web_search_mode(azure) == "disabled" and agent.web_search_mode(other) == "disabled"
    agent.web_search = "live"
    assert agent.tool_specs(openai)[-1] == {"type": "web_search", "external_web_access": True}
    assert agent.tool_specs(azure)[-1] == {"type": "web_search", "external_web_access": True}
    agent.web_search = "disabled"
    assert not [t for t in agent.tool_specs(openai) if t["type"] == "web_search"]


def test_provider_rejecting_web_search_gets_a_notice_and_a_retry(server, make_agent):
    agent = make_agent(web_search="cached")
    server.add_response(error_reply(400, "Hosted tool 'web_search' is not supported with this model.", param="tools"))
    server.add_response(text_reply("Answer without search.", phase="final_answer"))
    server.add_response(text_reply("Second answer.", phase="final_answer"))
    turn = asyncio.run(agent.ask("news?"))
    assert turn.status == "completed" and turn.text == "Answer without search."
    notices = [n.message for n in of_type(turn.events, ev.Notice)]
    assert any("rejected the web_search tool" in m and "%agent websearch" in m for m in notices)
    first, retry = server.requests[0].json, server.requests[1].json
    assert {"type": "web_search", "external_web_access": False} in first["tools"]
    assert not [t for t in retry["tools"] if t["type"] == "web_search"]
    assert [i["role"] for i in retry["input"]] == ["user"]  # the user message was kept once
    asyncio.run(agent.ask("again"))
    assert not [t for t in server.requests[2].json["tools"] if t["type"] == "web_search"]
    agent.web_search = "live"  # choosing again re-enables it
    assert agent.web_search_mode(agent.resolved_provider()) == "live"


def test_unrelated_400_is_not_retried(server, make_agent):
    agent = make_agent(web_search="cached")
    server.add_response(error_reply(400, "Invalid value for 'input'."))
    turn = asyncio.run(agent.ask("x"))
    assert turn.status == "failed" and len(server.requests) == 1
    assert agent.web_search_mode(agent.resolved_provider()) == "cached"


# --- the kernel runner ---------------------------------------------------------------------


@pytest.fixture
def kernel_like_loop():
    """An asyncio loop in its own thread, standing in for the kernel's main loop."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-kernel", daemon=True)
    thread.start()
    yield loop, thread
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_runner_runs_on_the_kernel_loop(kernel_like_loop):
    import threading

    from jupyter_agent.tools.kernel import KernelRunner

    loop, thread = kernel_like_loop
    runner = KernelRunner(loop)
    assert runner(lambda: threading.current_thread().name).result(5) == "fake-kernel"
    with runner.blocked():  # the no-autoawait fallback: the kernel thread is stuck in join()
        assert runner(lambda: threading.current_thread().name).result(5) == "jupyter-agent-tool"
    assert runner.fallbacks == 0


def test_runner_falls_back_when_the_kernel_thread_is_busy(kernel_like_loop):
    import threading

    from jupyter_agent.tools.kernel import KernelRunner

    loop, _thread = kernel_like_loop
    release = threading.Event()
    loop.call_soon_threadsafe(release.wait, 10)  # a long-running user cell
    runner = KernelRunner(loop, fallback_after=0.2)
    calls = []
    try:
        future = runner(lambda: calls.append(threading.current_thread().name) or "ran")
        assert future.result(5) == "ran" and runner.fallbacks == 1
        assert len(calls) == 1 and calls[0] != "fake-kernel"
    finally:
        release.set()
    assert runner(lambda: "again").result(5) == "again"
    assert len(calls) == 1  # the queued callback did not run a second time


def test_runner_turns_keyboard_interrupt_into_a_cancel(kernel_like_loop):
    from jupyter_agent.tools.kernel import KernelRunner, ToolInterrupted

    loop, _thread = kernel_like_loop
    cancelled = []
    runner = KernelRunner(loop, on_interrupt=lambda: cancelled.append(True))

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(ToolInterrupted):
        runner(interrupted).result(5)
    assert cancelled == [True]
    assert runner(lambda: 1).result(5) == 1  # the loop survived


def test_azure_web_search_is_opt_in_and_live_gets_a_notice(server, make_agent):
    agent = make_agent(provider="azure", web_search="default")
    assert agent.resolved_provider().is_azure
    server.add_response(text_reply("no search", phase="final_answer"))
    turn = asyncio.run(agent.ask("q"))
    body = server.requests[-1].json
    assert body["store"] is True and not [t for t in body["tools"] if t["type"] == "web_search"]
    assert not of_type(turn.events, ev.Notice)
    agent.web_search = "live"
    server.add_response(text_reply("searched", phase="final_answer"))
    turn = asyncio.run(agent.ask("q2"))
    assert {"type": "web_search", "external_web_access": True} in server.requests[-1].json["tools"]
    [notice] = of_type(turn.events, ev.Notice)
    assert "Azure ignores live access" in notice.message
    server.add_response(text_reply("again", phase="final_answer"))
    assert not of_type(asyncio.run(agent.ask("q3")).events, ev.Notice)  # said once


# --- strict schemas (issue 15 item 7) ------------------------------------------------------------


def test_tool_with_optional_arguments_is_sent_strict_and_null_means_default(server, make_agent):
    """Strict-compatible tool: ``strict: true``, every property required, optional ones nullable,
    ``additionalProperties: false`` (nested models too); the model's ``null`` gives the default."""
    seen: list[tuple] = []

    def plot(column: str, bins: int = 10, title: str | None = None, origin: Point | None = None) -> str:
        """Plot a histogram of a column."""
        seen.append((column, bins, title, origin))
        return "plotted"

    agent = make_agent(tools=[plot])
    server.add_response(
        calls_reply(("plot", {"column": "x", "bins": None, "title": None, "origin": {"x": 1, "y": 2}}, "c1"))
    )
    server.add_response(text_reply("Done.", phase="final_answer"))
    turn = asyncio.run(agent.ask("plot x"))
    assert turn.status == "completed", turn.error
    assert seen == [("x", 10, None, Point(x=1, y=2))]  # bins: null -> the default 10
    (spec,) = [t for t in server.requests[0].json["tools"] if t["type"] == "function"]
    assert spec["strict"] is True
    params = spec["parameters"]
    assert params["additionalProperties"] is False
    assert params["required"] == ["column", "bins", "title", "origin"]
    assert params["properties"]["column"] == {"type": "string"}
    assert params["properties"]["bins"] == {"type": ["integer", "null"]}
    assert {"type": "null"} in params["properties"]["title"]["anyOf"]
    point = params["$defs"]["Point"]
    assert point["additionalProperties"] is False and point["required"] == ["x", "y"]
    assert "default" not in json.dumps(params)


def test_tool_with_free_form_arguments_is_sent_with_strict_false(server, make_agent):
    """Not strict-compatible (a ``dict`` parameter): the schema as written, ``strict: false``."""

    def tag(labels: dict[str, str], note: str = "") -> str:
        """Attach labels."""
        return ",".join(sorted(labels))

    tool = FunctionTool.from_callable(tag)
    assert not tool.is_strict
    agent = make_agent(tools=[tool])
    server.add_response(calls_reply(("tag", {"labels": {"b": "1", "a": "2"}}, "c1")))
    server.add_response(text_reply("Tagged.", phase="final_answer"))
    turn = asyncio.run(agent.ask("tag it"))
    assert turn.status == "completed", turn.error
    (spec,) = [t for t in server.requests[0].json["tools"] if t["type"] == "function"]
    assert spec["strict"] is False
    assert spec["parameters"] == tool.parameters and spec["parameters"]["required"] == ["labels"]
    assert outputs(server.requests[1].json)["c1"] == "a,b"


def test_strict_can_be_chosen_per_tool():
    def look(name: str, depth: int = 1) -> str:
        """Look."""
        return name

    assert FunctionTool.from_callable(look).spec()["strict"] is True
    loose = FunctionTool.from_callable(look, strict=False)
    assert loose.spec()["strict"] is False and loose.spec()["parameters"]["required"] == ["name"]
    assert asyncio.run(loose.invoke('{"name": "n"}')) == ("n", False)

    def free(options: dict) -> str:
        """Free-form."""
        return "ok"

    with pytest.raises(ValueError, match="cannot be strict"):
        FunctionTool.from_callable(free, strict=True)
    for tool in kernel_tools({}):
        assert tool.spec()["strict"] is True, tool.name  # the built-in tools are all strict
