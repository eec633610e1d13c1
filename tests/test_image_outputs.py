"""Tool outputs with images (issue 13, item 4): a tool answering input_text/input_image parts sends
them as the function_call_output's ``output`` list (spec: FunctionCallOutputItemParam); a server that
rejects image input (scripted 400) gets the request again with text only, a notice, and the turn goes
on; later requests of the session leave images out while history keeps them."""

from __future__ import annotations

import asyncio
import json

import pytest

from jupyter_agent import events as ev
from jupyter_agent.agent.images import IMAGE_OMITTED
from jupyter_agent.cell_run import MAX_IMAGE_B64, with_images
from jupyter_agent.testing.replies import error_reply, function_call_reply, text_reply

from .tool_support import outputs

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAghzBTwAAAABJRU5ErkJggg=="


def plot() -> list:
    """Draw the chart."""
    return with_images("Ran cell: ok\n[display] [image/png 1x1, 0.1 kB]", [("image/png", PNG)])


def test_with_images_builds_parts_and_names_what_it_leaves_out():
    assert with_images("text", []) == "text"
    parts = with_images("text", [("image/png", PNG), ("image/png", "A" * (MAX_IMAGE_B64 + 4))])
    assert parts[0] == {"type": "input_text", "text": "text\n(1 image(s) not sent: too large or too many)"}
    assert parts[1] == {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}
    assert len(parts) == 2


def test_images_go_out_as_parts_and_a_rejecting_server_gets_text_only(server, make_agent):
    agent = make_agent()
    agent.add_tool(plot)
    server.add_response(function_call_reply("plot", "{}", call_id="p1"))
    server.add_response(error_reply(400, "Invalid content type. image_url is only supported by certain models."))
    server.add_response(text_reply("The chart shows one pixel.", phase="final_answer"))
    seen: list[ev.AgentEvent] = []
    agent.subscribe(seen.append)
    turn = asyncio.run(agent.ask("Plot it"))
    assert turn.text == "The chart shows one pixel."
    with_image, text_only = server.requests[-2].json, server.requests[-1].json
    assert outputs(with_image)["p1"][1] == {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}
    assert outputs(text_only)["p1"][0]["text"].startswith("Ran cell: ok")
    assert outputs(text_only)["p1"][1] == {"type": "input_text", "text": IMAGE_OMITTED}
    notices = [e for e in seen if isinstance(e, ev.Notice)]
    assert notices and "rejected image input" in notices[-1].message
    # history keeps the image; the session's later requests leave it out
    kept = [i for i in agent.history if i.get("type") == "function_call_output"][0]["output"]
    assert kept[1]["type"] == "input_image"
    server.add_response(text_reply("Still here.", phase="final_answer"))
    asyncio.run(agent.ask("And now?"))
    assert "input_image" not in str(server.requests[-1].json["input"])


def test_a_400_not_about_images_is_still_an_error(server, make_agent):
    agent = make_agent()
    agent.add_tool(plot)
    server.add_response(function_call_reply("plot", "{}", call_id="p2"))
    server.add_response(error_reply(400, "Unsupported parameter: temperature."))
    turn = asyncio.run(agent.ask("Plot it"))
    assert turn.error is not None
    assert "input_image" in str(server.requests[-1].json["input"])


@pytest.mark.kernel
def test_capture_run_in_a_kernel_gives_nbformat_outputs_with_images_and_errors(tmp_path, start_kernel):
    driver = start_kernel(cwd=tmp_path)
    try:
        code = (
            "import base64\nfrom IPython.display import Image, display\n"
            f"print('hello')\ndisplay(Image(data=base64.b64decode('{PNG}')))\n6 * 7"
        )
        ran = driver.run(
            "import json\nfrom jupyter_agent.cell_run import capture_run, output_images\n"
            f"outs = capture_run({code!r}, globals())\n"
            "err = capture_run('1 / 0', globals())\n"
            "print(json.dumps({'outs': outs, 'images': output_images(outs), 'err': err[-1]}))"
        )
        assert ran.status == "ok", ran.text
        got = json.loads(ran.text.strip().splitlines()[-1])
        assert got["outs"][0] == {"output_type": "stream", "name": "stdout", "text": "hello\n"}
        assert got["images"] == [["image/png", PNG]]
        # The value is the cell's result, as the notebook shows an executed cell's (no count: not an execute request).
        assert got["outs"][-1] == {
            "output_type": "execute_result",
            "data": {"text/plain": "42"},
            "metadata": {},
            "execution_count": None,
        }
        hidden = driver.run("print(capture_run('6 * 7;', globals()))")
        assert hidden.text.strip() == "[]", hidden.text  # a trailing ; hides the value, as in IPython
        assert got["err"]["output_type"] == "error" and got["err"]["ename"] == "ZeroDivisionError"
    finally:
        driver.shutdown()
