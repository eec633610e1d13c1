"""MCP tool servers: a real MCP server (the SDK's MCPServer) over stdio and streamable HTTP, called by
scripted model turns: tool list, call, approval, result (text and image), failures as notices,
removal, and secrets from env/headers kept out of everything."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path

import pytest

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.store import ConversationStore
from jupyter_agent.testing.replies import text_reply
from jupyter_agent.tools.mcp_config import McpServerConfig, read_codex_servers
from jupyter_agent.tools.mcp_tools import is_strict_compatible, output_text, responses_parameters, tool_name

from .mcp_support import http_demo, stdio_entry, wait_gone
from .sse_support import of_type
from .tool_support import calls_reply, outputs


@pytest.fixture
def mcp_agent(make_agent):
    """``make_agent`` whose MCP servers are stopped afterwards."""
    made: list[Agent] = []

    def factory(**kw):
        agent = make_agent(**kw)
        made.append(agent)
        return agent

    yield factory
    for agent in made:
        agent.mcp.close_sync()


def _answering(agent: Agent, decision: str = "approve") -> list[ev.ApprovalRequest]:
    asked: list[ev.ApprovalRequest] = []

    def on_event(event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ApprovalRequest):
            asked.append(event)
            agent.resolve_approval(event.call_id, decision)

    agent.subscribe(on_event)
    return asked


def _ask(agent: Agent, prompt: str, interactive: bool = True):
    return agent.start(prompt, interactive=interactive).result(60)


def _fn_tools(request_json: dict) -> dict[str, dict]:
    return {t["name"]: t for t in request_json["tools"] if t["type"] == "function"}


# --- conversions -------------------------------------------------------------------------------


def test_schema_conversion_and_strictness():
    loose = responses_parameters({"$schema": "x", "properties": {"a": {"type": "integer", "title": "A"}}})
    assert loose == {"properties": {"a": {"type": "integer", "title": "A"}}, "type": "object"}
    assert not is_strict_compatible(loose)  # open object, optional property, title keyword
    strict = {
        "type": "object",
        "properties": {"q": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["q", "tags"],
        "additionalProperties": False,
    }
    assert is_strict_compatible(responses_parameters(strict))
    assert not is_strict_compatible({**strict, "required": ["q"]})
    nested_open = {**strict, "properties": {**strict["properties"], "o": {"type": "object", "properties": {}}}}
    nested_open["required"] = ["q", "tags", "o"]
    assert not is_strict_compatible(nested_open)
    assert responses_parameters(None) == {"type": "object", "properties": {}}
    assert tool_name("fs", "read.file") == "mcp__fs__read_file"
    long = tool_name("server", "t" * 80)
    assert len(long) == 64 and long.startswith("mcp__server__ttt")
    parts = [
        {"type": "input_text", "text": "chart:"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
    ]
    assert output_text(parts) == "chart:\n[image/png image, 1 KB]"


def test_config_validation_codex_keys_and_secret_free_description(tmp_path):
    env = {"TOKEN_VAR": "tok-abcdef123456", "PASS": "pass-through-value"}
    cfg = McpServerConfig.from_dict(
        "gh",
        {"url": "https://u:pw@example.test/mcp?key=zzz", "bearer_token_env_var": "TOKEN_VAR"},
        environ=env,
    )
    assert cfg.headers == {"Authorization": "Bearer tok-abcdef123456"}
    assert "tok-abcdef123456" in cfg.secrets()
    assert cfg.describe() == "https://example.test/mcp  (headers: Authorization)"
    stdio = McpServerConfig.from_dict(
        "fs",
        {"command": "srv", "args": ["--x"], "env": {"API_TOKEN": "s3cret-value"}, "env_vars": ["PASS", "NOPE"]},
        environ=env,
    )
    assert stdio.env == {"API_TOKEN": "s3cret-value", "PASS": "pass-through-value"}
    assert "s3cret" not in stdio.describe() and "API_TOKEN" in stdio.describe()
    for bad, message in [
        ({}, "either 'command'"),
        ({"command": "x", "url": "http://y"}, "either 'command'"),
        ({"url": "ftp://x"}, "http://"),
        ({"command": "x", "approval": "maybe"}, "approval"),
        ({"command": "x", "args": "a b"}, "args must be a list"),
        ({"url": "http://x", "bearer_token_env_var": "MISSING"}, "MISSING is not set"),
    ]:
        with pytest.raises(ValueError, match=message):
            McpServerConfig.from_dict("s", bad, environ=env)
    with pytest.raises(ValueError, match="name"):
        McpServerConfig.from_dict("bad name", {"command": "x"})
    codex = tmp_path / "config.toml"
    codex.write_text(
        '[mcp_servers.docs]\ncommand = "docs-server"\nargs = ["--stdio"]\nstartup_timeout_sec = 3\n'
        'tool_timeout_sec = 9\nenabled_tools = ["search"]\n[mcp_servers.broken]\nargs = ["x"]\n'
    )
    found, problems = read_codex_servers(codex)
    assert [c.name for c in found] == ["docs"] and found[0].startup_timeout == 3 and found[0].tool_timeout == 9
    assert found[0].tool_enabled("search") and not found[0].tool_enabled("delete")
    assert found[0].source == str(codex) and len(problems) == 1 and "broken" in problems[0]
    assert read_codex_servers(tmp_path / "missing.toml") == ([], [])


def test_codex_config_is_opt_in(mcp_agent, tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(f"[mcp_servers.demo]\ncommand = {json.dumps(stdio_entry()['command'])}\n")
    monkeypatch.setenv("CODEX_HOME", str(tmp_path))
    agent = mcp_agent()
    assert agent.mcp_configs() == []
    agent.mcp_codex_config = True
    assert [(c.name, c.source) for c in agent.mcp_configs()] == [("demo", str(tmp_path / "config.toml"))]
    agent.mcp_codex_config = False
    # %config Agent.mcp_servers / ipython_config.py go through traitlets config: the servers start at once.
    from traitlets.config import Config

    agent.update_config(Config({"Agent": {"mcp_servers": {"cfg": stdio_entry(approval="auto")}}}))
    assert agent.mcp.servers["cfg"].state == "ready" and agent.approval_policy("mcp__cfg__add") == "auto"


# --- stdio: list, call, approval, result ---------------------------------------------------------


def test_stdio_tool_listed_called_with_approval_and_result_sent_back(server, mcp_agent):
    agent = mcp_agent()
    t0 = time.perf_counter()
    agent.add_mcp_server("demo", **stdio_entry())
    assert agent.mcp.servers["demo"].state == "ready", agent.mcp.describe()
    assert time.perf_counter() - t0 < 15
    asked = _answering(agent, "approve")
    server.add_response(calls_reply(("mcp__demo__lookup", {"topic": "jupiter"}, "c1"), preamble="Checking."))
    server.add_response(text_reply("Jupiter has 97 moons.", phase="final_answer"))
    turn = _ask(agent, "How many moons does Jupiter have?")
    assert turn.status == "completed" and turn.text == "Jupiter has 97 moons."
    tools = _fn_tools(server.requests[0].json)
    lookup = tools["mcp__demo__lookup"]
    assert lookup["strict"] is False and lookup["parameters"]["required"] == ["topic"]
    assert "knowledge base" in lookup["description"]
    assert {"mcp__demo__add", "mcp__demo__chart", "mcp__demo__crash"} <= set(tools)
    assert [a.name for a in asked] == ["mcp__demo__lookup"]  # default policy: ask
    assert outputs(server.requests[1].json)["c1"].startswith("Jupiter has 97 known moons")
    result = of_type(turn.events, ev.ToolResult)[0]
    assert not result.is_error and "97 known moons" in result.output
    assert agent.mcp.servers["demo"].calls == 1


def test_denied_and_non_interactive_calls_do_not_reach_the_server(server, mcp_agent):
    agent = mcp_agent()
    agent.add_mcp_server("demo", **stdio_entry())
    _answering(agent, "deny")
    server.add_response(calls_reply(("mcp__demo__add", {"a": 1, "b": 2}, "c1")))
    server.add_response(text_reply("Denied.", phase="final_answer"))
    _ask(agent, "add")
    assert outputs(server.requests[1].json)["c1"] == "The user denied the call to mcp__demo__add."
    server.add_response(calls_reply(("mcp__demo__add", {"a": 1, "b": 2}, "c2")))
    server.add_response(text_reply("No approval.", phase="final_answer"))
    _ask(agent, "add", interactive=False)
    assert outputs(server.requests[3].json)["c2"].startswith("Denied: mcp__demo__add needs the user's approval")
    assert agent.mcp.servers["demo"].calls == 0
    # Per-tool policy through the usual %agent approve path, and per-server policy from the config.
    agent.set_approval("mcp__demo__add", "auto")
    server.add_response(calls_reply(("mcp__demo__add", {"a": 1, "b": 2}, "c3")))
    server.add_response(text_reply("3", phase="final_answer"))
    _ask(agent, "add", interactive=False)
    assert outputs(server.requests[5].json)["c3"] == "3"
    agent.add_mcp_server("demo", **stdio_entry(), approval="never", tool_approval={"lookup": "auto"})
    assert agent.approval_policy("mcp__demo__add") == "auto"  # the explicit %agent approve still wins
    server.add_response(calls_reply(("mcp__demo__chart", {}, "c4"), ("mcp__demo__lookup", {"topic": "answer"}, "c5")))
    server.add_response(text_reply("ok", phase="final_answer"))
    _ask(agent, "chart and lookup", interactive=False)
    out = outputs(server.requests[7].json)
    assert out["c4"] == "Not run: the approval policy of mcp__demo__chart is 'never'."
    assert out["c5"] == "The answer is 42."


# --- streamable HTTP, images, headers ------------------------------------------------------------


def test_http_server_with_bearer_token_image_result_as_input_image(server, mcp_agent, monkeypatch):
    token = "tok-" + secrets.token_hex(8)
    monkeypatch.setenv("DEMO_MCP_TOKEN", token)
    with http_demo("--require-token-env", "DEMO_MCP_TOKEN", env={"DEMO_MCP_TOKEN": token}) as url:
        agent = mcp_agent(
            mcp_servers={"web": {"url": url, "bearer_token_env_var": "DEMO_MCP_TOKEN", "approval": "auto"}}
        )
        server.add_response(
            calls_reply(("mcp__web__chart", {"colour": "blue"}, "c1"), ("mcp__web__add", {"a": 2, "b": 40}, "c2"))
        )
        server.add_response(text_reply("A blue square; 42.", phase="final_answer"))
        turn = _ask(agent, "draw and add", interactive=False)
        assert turn.status == "completed", turn.error
        assert agent.mcp.servers["web"].state == "ready" and agent.mcp.servers["web"].config.transport == "http"
        out = outputs(server.requests[1].json)
        assert out["c2"] == "42"
        image = out["c1"]
        assert isinstance(image, list) and image[0]["type"] == "input_image"
        assert image[0]["image_url"].startswith("data:image/png;base64,iVBORw0KGgo")
        chart_result = next(r for r in of_type(turn.events, ev.ToolResult) if r.call_id == "c1")
        assert chart_result.output.startswith("[image/png image")
        # The list output is valid history: the next request replays it unchanged.
        server.add_response(text_reply("still here", phase="final_answer"))
        _ask(agent, "again", interactive=False)
        replayed = [i for i in server.requests[2].json["input"] if i.get("call_id") == "c1" and "output" in i]
        assert replayed[0]["output"] == image
        # A wrong token: the server answers 401 and the state says it did not start.
        agent.add_mcp_server("bad", url=url, headers={"Authorization": "Bearer wrong-token-value"}, startup_timeout=5)
        bad = agent.mcp.servers["bad"]
        assert bad.state == "failed" and "wrong-token-value" not in (bad.error or "")
        assert "wrong-token-value" not in agent.mcp.describe()


# --- failures are notices --------------------------------------------------------------------------


def test_crash_mid_call_is_a_tool_error_and_the_turn_goes_on(server, mcp_agent, tmp_path):
    pid_file = tmp_path / "pid"
    agent = mcp_agent()
    agent.add_mcp_server("demo", **stdio_entry("--pid-file", str(pid_file)), approval="auto")
    pid = int(pid_file.read_text())
    server.add_response(calls_reply(("mcp__demo__crash", {}, "c1")))
    server.add_response(text_reply("The tool server crashed.", phase="final_answer"))
    turn = _ask(agent, "crash it", interactive=False)
    assert turn.status == "completed" and turn.text == "The tool server crashed."
    out = outputs(server.requests[1].json)["c1"]
    assert out.startswith("MCP server demo stopped during the call to crash")
    assert wait_gone(pid)
    state = agent.mcp.servers["demo"]
    assert state.state == "failed" and "crashing on purpose" in (state.error or "")  # stderr tail
    assert "failed" in agent.mcp.describe()
    # Next turn: the tools are gone from the request, a notice says why; the history stays valid.
    server.add_response(text_reply("Without tools.", phase="final_answer"))
    turn2 = _ask(agent, "again", interactive=False)
    assert turn2.status == "completed"
    assert not [n for n in _fn_tools(server.requests[2].json) if n.startswith("mcp__")]
    notices = [n.message for n in of_type(turn2.events, ev.Notice)]
    assert any("MCP server demo is unavailable" in m and "restart demo" in m for m in notices)
    # %agent mcp restart brings it back.
    agent.mcp.restart("demo", wait=30)
    assert agent.mcp.servers["demo"].state == "ready"


def test_slow_list_tools_times_out_and_the_turn_goes_on(server, mcp_agent):
    agent = mcp_agent()
    t0 = time.perf_counter()
    agent.add_mcp_server("slow", **stdio_entry("--slow-list", "30"), startup_timeout=1.5)
    elapsed = time.perf_counter() - t0
    slow = agent.mcp.servers["slow"]
    assert slow.state == "failed" and "within 1.5 s" in (slow.error or "")
    assert elapsed < 12, elapsed
    server.add_response(text_reply("Answered anyway.", phase="final_answer"))
    turn = _ask(agent, "hi", interactive=False)
    assert turn.status == "completed" and turn.text == "Answered anyway."
    assert any("slow is unavailable" in n.message for n in of_type(turn.events, ev.Notice))
    assert not of_type(turn.events, ev.Error)


def test_server_that_does_not_start_and_error_results(server, mcp_agent):
    agent = mcp_agent(mcp_servers={"dead": stdio_entry("--exit-at-start"), "missing": {"command": "/nonexistent/mcp"}})
    agent.add_mcp_server("demo", **stdio_entry(), approval="auto")
    states = {n: s.state for n, s in agent.mcp.servers.items()}
    assert states == {"dead": "failed", "missing": "failed", "demo": "ready"}
    assert "refusing to start" in (agent.mcp.servers["dead"].error or "")
    server.add_response(calls_reply(("mcp__demo__fail", {"message": "bad input"}, "c1"), ("mcp__dead__add", {}, "c2")))
    server.add_response(text_reply("Both failed.", phase="final_answer"))
    turn = _ask(agent, "try", interactive=False)
    assert turn.status == "completed"
    out = outputs(server.requests[1].json)
    assert out["c1"].startswith("The tool reported an error:")
    assert out["c2"] == "Unknown tool: mcp__dead__add"
    results = {r.call_id: r.is_error for r in of_type(turn.events, ev.ToolResult)}
    assert results == {"c1": True, "c2": True}
    notices = " ".join(n.message for n in of_type(turn.events, ev.Notice))
    assert "dead is unavailable" in notices and "missing is unavailable" in notices


def test_remove_while_idle_stops_the_process_and_drops_the_tools(server, mcp_agent, tmp_path):
    pid_file = tmp_path / "pid"
    agent = mcp_agent(mcp_servers={"demo": stdio_entry("--pid-file", str(pid_file))})
    server.add_response(text_reply("one", phase="final_answer"))
    _ask(agent, "first", interactive=False)
    assert "mcp__demo__add" in _fn_tools(server.requests[0].json)
    pid = int(pid_file.read_text())
    agent.remove_mcp_server("demo")
    assert wait_gone(pid, 10), "the server process outlived its removal"
    assert agent.mcp_servers == {} and "demo" not in agent.mcp.servers
    server.add_response(text_reply("two", phase="final_answer"))
    _ask(agent, "second", interactive=False)
    assert "mcp__demo__add" not in _fn_tools(server.requests[1].json)
    assert "mcp__demo__add" not in agent.tools
    with pytest.raises(KeyError):
        agent.remove_mcp_server("demo")


# --- secrets -----------------------------------------------------------------------------------------


def test_secrets_in_env_and_headers_never_leave(server, mcp_agent, tmp_path, caplog):
    env_canary = "mcp-env-canary-" + secrets.token_hex(10)
    header_canary = "mcp-hdr-canary-" + secrets.token_hex(10)
    caplog.set_level(logging.DEBUG)
    with http_demo() as url:
        agent = mcp_agent(
            mcp_servers={
                "env": stdio_entry(env={"DEMO_SECRET": env_canary}, approval="auto"),
                "web": {"url": url, "headers": {"X-Api-Key": header_canary}, "approval": "auto"},
                "down": stdio_entry("--exit-at-start", env={"DEMO_SECRET": env_canary}),
            }
        )
        store = ConversationStore(str(tmp_path / "history"), "canary.ipynb", secrets=agent.secret_values)
        agent.attach_store(store)
        # A hostile tool echoes the secret; an error result and bad arguments go back too.
        server.add_response(
            calls_reply(
                ("mcp__env__getenv", {"name": "DEMO_SECRET"}, "c1"),
                ("mcp__web__fail", {"message": "boom"}, "c2"),
                ("mcp__env__add", '{"a": "x"}', "c3"),
            )
        )
        server.add_response(text_reply("done", phase="final_answer"))
        turn = _ask(agent, "show me the secret", interactive=False)
        assert turn.status == "completed"
        texts = [
            json.dumps([e.to_dict() for e in turn.events]),
            json.dumps(agent.history),
            json.dumps(turn.telemetry),
            json.dumps([r.json for r in server.requests]),
            agent.mcp.describe(),
            repr(agent.mcp_configs()),
            "\n".join(r.getMessage() for r in caplog.records),
            "\n".join(p.read_text() for p in Path(tmp_path / "history").rglob("*") if p.is_file()),
        ]
        for text in texts:
            assert env_canary not in text and header_canary not in text
        assert outputs(server.requests[1].json)["c1"] == "[REDACTED]"


# --- AGENTS.md -----------------------------------------------------------------------------------------


def test_agents_md_from_the_notebook_dir_up_to_the_repo_root_in_the_request(server, mcp_agent, tmp_path):
    repo = tmp_path / "repo"
    nbdir = repo / "analysis" / "q3"
    nbdir.mkdir(parents=True)
    (repo / ".git").mkdir()
    (tmp_path / "AGENTS.md").write_text("OUTSIDE THE REPO: never read.")
    (repo / "AGENTS.md").write_text("Repo rule: use pandas.")
    (repo / "analysis" / "AGENTS.md").write_text("Analysis rule: plots in matplotlib.")
    (nbdir / "AGENTS.md").write_text("Notebook rule: answer in French.")
    agent = mcp_agent(instructions="Base instructions.")
    agent.project_dir = str(nbdir)
    server.add_response(text_reply("Bonjour.", phase="final_answer"))
    _ask(agent, "hi", interactive=False)
    sent = server.requests[0].json["instructions"]
    assert sent.startswith("Base instructions.")
    order = [sent.index(s) for s in ("use pandas", "matplotlib", "in French")]
    assert order == sorted(order)  # root first, nearest last
    assert "OUTSIDE" not in sent
    assert f"Project instructions from {nbdir / 'AGENTS.md'}" in sent
    sources = [p.source for p in agent.instruction_parts()]
    assert sources == [
        "Agent.instructions",
        str(repo / "AGENTS.md"),
        str(repo / "analysis" / "AGENTS.md"),
        str(nbdir / "AGENTS.md"),
    ]
    # Edits apply on the next turn; the cap cuts the farthest file first.
    (nbdir / "AGENTS.md").write_text("Notebook rule: answer in German." + " " * 10)
    agent.agents_md_max_bytes = 60
    parts = agent.instruction_parts()
    assert parts[-1].text.endswith("German.") and not parts[-1].truncated
    assert parts[-2].truncated and len(parts[-2].text.encode()) <= 60 - len(parts[-1].text.encode())
    assert parts[1].truncated and parts[1].text == ""
    agent.project_instructions = False
    assert agent.effective_instructions() == "Base instructions."


def test_agents_md_outside_a_repo_stops_at_home(tmp_path):
    from jupyter_agent.instructions import find_agents_files, search_dirs

    home = tmp_path / "home"
    work = home / "work" / "nb"
    work.mkdir(parents=True)
    (tmp_path / "AGENTS.md").write_text("above home")
    (home / "AGENTS.md").write_text("home rules")
    (work / "AGENTS.md").write_text("nb rules")
    assert find_agents_files(work, home=home) == [home / "AGENTS.md", work / "AGENTS.md"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert search_dirs(elsewhere, home=home) == [elsewhere.resolve()]


def test_mcp_tool_results_do_not_block_the_agent_loop(server, mcp_agent):
    """A slow MCP call runs on the agent loop without blocking it (other calls proceed in parallel)."""
    agent = mcp_agent()
    agent.add_mcp_server("demo", **stdio_entry(), approval="auto")
    server.add_response(
        calls_reply(("mcp__demo__sleep", {"seconds": 1.0}, "c1"), ("mcp__demo__add", {"a": 1, "b": 1}, "c2"))
    )
    server.add_response(text_reply("ok", phase="final_answer"))
    t0 = time.perf_counter()
    turn = _ask(agent, "parallel", interactive=False)
    assert turn.status == "completed"
    results = [r.call_id for r in of_type(turn.events, ev.ToolResult)]
    assert results == ["c2", "c1"]  # the quick call finished first
    assert time.perf_counter() - t0 < 10


def test_panel_approves_an_mcp_call_over_the_comm(server, mcp_agent):
    """The side panel's path: approval request and decision travel over the comm like any tool's."""
    from jupyter_agent import comm as C

    from .test_comm import FakeComm

    agent = mcp_agent()
    agent.add_mcp_server("demo", **stdio_entry())
    comm = FakeComm()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1})
        server.add_response(calls_reply(("mcp__demo__add", {"a": 40, "b": 2}, "c1")))
        server.add_response(text_reply("40 + 2 = 42.", phase="final_answer"))
        comm.deliver({"type": "send", "id": "m1", "text": "What is 40 + 2?"})

        def asked(sent: list[dict]) -> bool:
            return any(m["type"] == "event" and m["event"]["type"] == "approval_request" for m in sent)

        request = next(
            m["event"] for m in comm.wait_for(asked, 20) if m.get("event", {}).get("type") == "approval_request"
        )
        assert request["name"] == "mcp__demo__add" and json.loads(request["arguments"]) == {"a": 40, "b": 2}
        comm.deliver({"type": "approval", "call_id": request["call_id"], "decision": "approve"})
        sent = comm.wait_for(lambda s: any(m.get("event", {}).get("type") == "turn_done" for m in s), 20)
        events = [m["event"] for m in sent if m["type"] == "event"]
        result = next(e for e in events if e["type"] == "tool_result")
        assert result["output"] == "42" and not result["is_error"]
        assert events[-1]["type"] == "turn_done" and events[-1]["status"] == "completed"
        assert outputs(server.requests[1].json)["c1"] == "42"
    finally:
        bridge.close()


def test_server_that_dies_while_idle_is_noticed_at_the_next_turn(server, mcp_agent, tmp_path):
    import os
    import signal

    pid_file = tmp_path / "pid"
    agent = mcp_agent()
    agent.add_mcp_server("demo", **stdio_entry("--pid-file", str(pid_file)), approval="auto")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert wait_gone(int(pid_file.read_text()))
    server.add_response(text_reply("No tools today.", phase="final_answer"))
    turn = _ask(agent, "hi", interactive=False)
    assert turn.status == "completed" and turn.text == "No tools today."
    assert not [n for n in _fn_tools(server.requests[0].json) if n.startswith("mcp__")]
    assert any("demo is unavailable" in n.message for n in of_type(turn.events, ev.Notice))
    assert agent.mcp.servers["demo"].state == "failed"
