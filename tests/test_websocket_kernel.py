"""``%%agent`` cells over the Responses WebSocket in a real ipykernel, against the scripted server.

The connection is prewarmed when the extension connects, reused by two cells (incremental
requests), and a refused upgrade later falls back to HTTPS with the notice shown in the cell.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_agent.testing import ScriptedServer, WsConn, completed_event, created_event, text_events, text_reply, usage

from .kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def test_cells_share_one_prewarmed_connection_then_fall_back(tmp_path, server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[
                [created_event("warm-1"), completed_event("warm-1", output=[], usage_obj=usage(0, 0))],
                text_events("First answer over the socket.", response_id="resp-1", phase="final_answer"),
                text_events("Second answer, same socket.", response_id="resp-2", phase="final_answer"),
            ],
            close_after_requests=False,
        )
    )
    driver = KernelDriver(cwd=str(tmp_path))
    try:
        setup = driver.run(
            "%load_ext jupyter_agent\n"
            "import jupyter_agent.magics as M\n"
            f"%agent connect --base-url {server.base_url} --provider openai --model gpt-5-scripted --transport websocket\n"
            "a = M.get_agent()\n"
            "a.web_search = 'disabled'\n"
            "a.prewarm()  # connect replaced the session: warm the new one\n"
        )
        assert setup.status == "ok", setup.text
        assert server.wait_for(
            lambda: len(server.ws_connections) == 1 and len(server.ws_connections[0].frames) == 1, 10
        )
        first = driver.run("%%agent\nfirst question")
        assert first.status == "ok", first.text
        assert "First answer over the socket." in first.text
        second = driver.run("%%agent\nsecond question")
        assert "Second answer, same socket." in second.text
        (rec,) = server.ws_connections
        warm, f1, f2 = rec.frames
        assert warm["generate"] is False
        assert f1["previous_response_id"] == "warm-1"
        assert f2["previous_response_id"] == "resp-1" and len(f2["input"]) == 1
        # a new session (transport switched back and forth) whose upgrade is refused: HTTPS, with the notice
        server.add_ws_connection(WsConn(status=426))
        server.add_response(text_reply("Third answer over HTTPS.", phase="final_answer"))
        third = driver.run("%agent transport sse\n%agent transport websocket\n")
        assert third.status == "ok", third.text
        out = driver.run("%%agent\nthird question")
        assert "Third answer over HTTPS." in out.text
        assert "Falling back from WebSockets to HTTPS transport." in out.text
        assert len(server.find_requests("POST", "/responses")) == 1
    finally:
        driver.shutdown()
