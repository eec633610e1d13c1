"""The notebook experience in a real ipykernel: configuration (.env, %config, per-cell options),
usage messages for bad options, ``%agent usage`` with additional buckets, ``%agent limits``."""

from __future__ import annotations

import time

import pytest

from jupyter_agent.testing import Reply
from jupyter_agent.testing.replies import text_reply

pytestmark = pytest.mark.kernel

DOTENV_KEY = "sk-dotenv-" + "7f3a9c" * 4


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, start_kernel, module_server):
    """A kernel whose working directory has a ``.env`` pointing at the scripted server."""
    cwd = tmp_path_factory.mktemp("dotenv")
    (cwd / ".env").write_text(
        "# read by jupyter_agent at first use\n"
        f"export OPENAI_API_KEY='{DOTENV_KEY}'\n"
        f"OPENAI_BASE_URL={module_server.base_url}  # the scripted server\n"
    )
    return start_kernel(cwd=cwd, setup="%load_ext jupyter_agent\nimport jupyter_agent.magics as M\na = M.get_agent()\n")


def _no_traceback(result) -> None:
    assert result.status == "ok", result.text
    assert "Traceback" not in result.text
    assert not result.of_type("error"), result.text


def test_dotenv_is_honoured_and_the_key_never_shown(kernel, module_server):
    status = kernel.run("%agent status")
    _no_traceback(status)
    assert f"Responses-compatible server at {module_server.base_url}" in status.text
    module_server.add_response(text_reply("From the .env server.", phase="final_answer"))
    cell = kernel.run("%%agent\nwho are you?")
    _no_traceback(cell)
    assert "From the .env server." in cell.text
    assert module_server.api_requests[-1].headers.get("authorization") == f"Bearer {DOTENV_KEY}"
    shown = kernel.run("print(repr(a.resolved_provider()), a.resolved_provider().api_key)\n%agent status")
    assert DOTENV_KEY not in shown.text and DOTENV_KEY not in status.text and DOTENV_KEY not in cell.text
    assert "********" in shown.text


def test_config_magic_sets_the_model(kernel, module_server):
    try:
        _no_traceback(kernel.run("%config Agent.model = 'gpt-from-config'"))
        module_server.add_response(text_reply("ok", phase="final_answer"))
        _no_traceback(kernel.run("%%agent\nhi"))
        assert module_server.api_requests[-1].json["model"] == "gpt-from-config"
        assert "Model:      gpt-from-config" in kernel.run("%agent status").text
    finally:
        kernel.run("a.model = ''")


def test_cell_options_apply_to_one_cell_only(kernel, module_server):
    _no_traceback(kernel.run("%agent model gpt-default\n%agent transport websocket"))
    try:
        module_server.add_response(text_reply("Per-cell answer.", phase="final_answer"))
        before = len(module_server.api_requests)
        cell = kernel.run("%%agent -m gpt-cell -t sse\nanswer per cell")
        _no_traceback(cell)
        assert "Per-cell answer." in cell.text
        sent = module_server.api_requests[before:]
        # -t sse: an HTTP POST although the agent is set to WebSocket; -m: the cell's model.
        assert [(r.method, r.is_websocket) for r in sent] == [("POST", False)]
        assert sent[0].json["model"] == "gpt-cell"
        after = kernel.run("print(a.model, a.transport)")
        assert "gpt-default websocket" in after.text
    finally:
        kernel.run("a.model = ''; a.transport = 'auto'")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("%%agent -t carrier-pigeon\nhello", "invalid choice: 'carrier-pigeon'"),
        ("%%agent --model\nhello", "expected one argument"),
        ("%%agent --frobnicate\nhello", "unrecognized arguments: --frobnicate"),
        ('%%agent -m "unterminated\nhello', "cannot parse options"),
        ("%%agent\n", "empty prompt"),
        ("%agent", "missing command"),
        ("%agent frobnicate", "unknown command 'frobnicate'"),
        ("%agent model", "usage: %agent model NAME"),
        ("%agent transport pigeon", "usage: %agent transport auto|sse|websocket"),
        ("%agent connect --provider nowhere", "invalid choice: 'nowhere'"),
    ],
)
def test_bad_options_give_a_usage_message(kernel, module_server, code, expected):
    before = len(module_server.api_requests)
    result = kernel.run(code)
    _no_traceback(result)
    assert "UsageError" in result.text and expected in result.text, result.text
    if code.startswith("%%agent"):
        assert "usage: %%agent" in result.text or "empty prompt" in result.text or "cannot parse" in result.text
    assert len(module_server.api_requests) == before  # nothing was sent


def test_usage_command_renders_additional_rate_limits(kernel, module_server):
    now = int(time.time())
    payload = {
        "plan_type": "pro",
        "rate_limit": {
            "allowed": True,
            "limit_reached": False,
            "primary_window": {"used_percent": 42, "limit_window_seconds": 18000, "reset_at": now + 3600},
            "secondary_window": {"used_percent": 95, "limit_window_seconds": 604800, "reset_at": now + 86400},
        },
        "credits": {"has_credits": True, "unlimited": False, "balance": "9.99"},
        "additional_rate_limits": [
            {
                "limit_name": "GPT-5.3-Codex-Spark",
                "metered_feature": "codex_bengalfox",
                "rate_limit": {
                    "allowed": True,
                    "limit_reached": False,
                    "primary_window": {"used_percent": 88, "limit_window_seconds": 1800, "reset_at": now + 600},
                },
            },
        ],
    }
    module_server.add_route("GET", "/api/codex/usage", Reply(body=payload))
    before = len(module_server.api_requests)
    result = kernel.run("%agent usage")
    _no_traceback(result)
    text = result.text
    for needle in (
        "5h limit:",
        "58% left",
        "Weekly limit:",
        "5% left",
        "[very low]",
        "Credits:",
        "10 credits",
        "GPT-5.3-Codex-Spark 1h limit:",
        "12% left",
        "[low]",
        "(resets ",
    ):
        assert needle in text, (needle, text)
    req = module_server.api_requests[before]
    assert (req.method, req.path) == ("GET", "/api/codex/usage")
    assert req.headers.get("authorization") == f"Bearer {DOTENV_KEY}"
    # the result is a live gauge widget with a text fallback
    assert any(
        "application/vnd.jupyter.widget-view+json" in m["content"]["data"] for m in result.of_type("execute_result")
    )
    # and the agent keeps the buckets: %agent status shows them too
    status = kernel.run("%agent status").text
    assert "GPT-5.3-Codex-Spark 1h limit:" in status and "58% left" in status


def test_usage_command_without_an_endpoint_says_so(kernel, module_server):
    module_server.add_route("GET", "/api/codex/usage", Reply(status=404, body={"error": {"message": "no"}}))
    result = kernel.run("%agent usage")
    _no_traceback(result)
    assert "Usage: This provider has no usage endpoint" in result.text


def test_pinned_limits_widget_follows_later_turns(kernel, module_server):
    setup = kernel.run("g = M.pinned_gauges(a)\nw = g.widget\nprint(g.text())")
    _no_traceback(setup)
    assert "29% left" not in setup.text
    headers = {
        "x-codex-primary-used-percent": "71",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(int(time.time()) + 3600),
    }
    module_server.add_response(text_reply("Limits changed.", phase="final_answer", headers=headers))
    _no_traceback(kernel.run("%%agent\nanything"))
    # The widget's value is pushed from the agent thread (throttled); wait for it without a cell running.
    after = kernel.run(
        "import time\n"
        "deadline = time.monotonic() + 5\n"
        "while '29% left' not in w.value and time.monotonic() < deadline: time.sleep(0.05)\n"
        "print(g.text()); print('29% left' in w.value, 'jpa-gauge-warn' in w.value, g.updates_sent >= 1)\n"
        "g.close()"
    )
    assert "5h limit:" in after.text and "29% left" in after.text and "[low]" in after.text
    assert after.text.strip().splitlines()[-1] == "True True True"


def test_help_model_reset_and_history_commands(kernel, module_server):
    help_ = kernel.run("%agent help")
    _no_traceback(help_)
    for command in (
        "%agent status",
        "%agent usage",
        "%agent model NAME",
        "%agent reset",
        "%agent history",
        "%%agent [-m MODEL]",
    ):
        assert command in help_.text
    assert "Model set to gpt-named" in kernel.run("%agent model gpt-named").text
    try:
        module_server.add_response(text_reply("First answer.", phase="final_answer"))
        _no_traceback(kernel.run("%%agent\nfirst question"))
        assert module_server.api_requests[-1].json["model"] == "gpt-named"
        history = kernel.run("%agent history").text
        assert "[user] first question" in history and "[assistant (final_answer)] First answer." in history
        assert "Started a new conversation." in kernel.run("%agent reset").text
        assert "(no conversation yet)" in kernel.run("%agent history").text
        module_server.add_response(text_reply("Fresh.", phase="final_answer"))
        _no_traceback(kernel.run("%%agent\nsecond question"))
        sent = [i for i in module_server.api_requests[-1].json["input"] if i.get("type") == "message"]
        assert [i["role"] for i in sent] == ["user"]  # the old conversation is gone
    finally:
        kernel.run("a.model = ''")


def test_ipython_config_file_configures_the_agent(tmp_path, start_kernel, module_server):
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(
        "c.Agent.model = 'gpt-from-ipython-config'\n"
        f"c.Agent.base_url = '{module_server.base_url}'\n"
        "c.Agent.provider = 'compatible'\n"
        "c.Agent.transport = 'sse'\n"
    )
    driver = start_kernel(cwd=tmp_path, env={"IPYTHONDIR": str(tmp_path / "ipython")})
    try:
        _no_traceback(driver.run("%load_ext jupyter_agent"))
        status = driver.run("%agent status").text
        assert "Model:      gpt-from-ipython-config" in status and "Transport:  sse" in status
        module_server.add_response(text_reply("Configured.", phase="final_answer"))
        cell = driver.run("%%agent\nhello")
        _no_traceback(cell)
        assert "Configured." in cell.text
        assert module_server.api_requests[-1].json["model"] == "gpt-from-ipython-config"
    finally:
        driver.shutdown()


def _widget_values(result) -> list[str]:
    """Every string trait value the cell's widgets sent to the front end (comm messages)."""
    values = []
    for msg in result.of_type("comm_open", "comm_msg"):
        data = msg["content"].get("data") or {}
        state = data.get("state") or {}
        for value in state.values():
            if isinstance(value, str):
                values.append(value)
    return values


def test_retry_shows_reconnecting_in_place_and_the_text_once(kernel, module_server):
    from jupyter_agent.testing import Ev
    from jupyter_agent.testing.replies import text_events

    kernel.run("a.session.options.backoff_base = 0.5")
    try:
        broken = text_events("This attempt is cut off", phase="final_answer", chunks=4)
        module_server.add_response(
            Reply(events=[Ev(e, delay=0.05) for e in broken], fault=("drop_after", 5))
        )  # two deltas, then the connection drops
        module_server.add_response(text_reply("The complete answer.", phase="final_answer", chunks=3))
        result = kernel.run("%%agent\ntell me")
        _no_traceback(result)
        live = _widget_values(result)
        assert any("Reconnecting... 1/5" in v for v in live), live
        finals = [
            m["content"]["data"] for m in result.of_type("display_data") if "text/markdown" in m["content"]["data"]
        ]
        assert len(finals) == 1
        assert "The complete answer." in finals[0]["text/plain"]
        assert "This a" not in finals[0]["text/plain"] and "Reconnecting" not in finals[0]["text/plain"]
    finally:
        kernel.run("a.session.options.backoff_base = 0.2")
