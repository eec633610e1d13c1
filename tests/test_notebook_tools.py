"""``read_notebook`` / ``read_cell`` (issue 13, capability 1): summaries, budget and elision, image
sizes; in a real kernel without a frontend, the execution history with the last traceback, the model
told it is history, and the cell tools not offered (``%agent tools`` says why)."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from jupyter_agent.testing.replies import text_reply
from jupyter_agent.tools.notebook import (
    CELL_TOOLS,
    HISTORY_PREAMBLE,
    Cell,
    find_cell,
    image_size,
    render_cells,
    summarise_output,
)

from .tool_support import calls_reply, outputs


def png(width: int, height: int) -> bytes:
    """A real (tiny, valid) PNG of the given size."""
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_image_sizes_from_headers():
    assert image_size("image/png", png(7, 3)) == (7, 3)
    assert image_size("image/jpeg", jpeg_header(640, 480)) == (640, 480)
    assert image_size("image/png", b"not a png") is None


def test_outputs_are_summarised():
    stream = summarise_output({"output_type": "stream", "name": "stdout", "text": ["a" * 5000, "END"]})
    assert stream.startswith("[stdout] aaa") and stream.endswith("END") and "characters elided" in stream
    assert len(stream) < 800
    tb = ["\x1b[0;31mTraceback\x1b[0m"] + [f"  frame {i}" for i in range(30)] + ["ZeroDivisionError: division by zero"]
    err = summarise_output(
        {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": tb}
    )
    assert err.startswith("[error] ZeroDivisionError: division by zero")
    assert "frame 29" in err and "frame 3\n" not in err and "traceback lines elided" in err and "\x1b" not in err
    b64 = base64.b64encode(png(64, 32)).decode()
    img = summarise_output({"output_type": "display_data", "data": {"image/png": b64, "text/plain": "<Figure>"}})
    assert img.startswith("[display] [image/png 64x32, ") and "<Figure>" in img and b64 not in img


def test_budget_keeps_head_and_tail_with_an_elision_marker():
    cells = [Cell(i, f"id{i}", "code", f"x{i} = {i}\n" + "y" * 300, i + 1) for i in range(200)]
    text = render_cells(cells, budget=6000)
    assert len(text) <= 6000
    assert "id=id0 " in text and "id=id199 " in text  # the first and the newest cells survive
    assert "cells elided: indices" in text and "read_cell" in text
    small = render_cells(cells[:3], budget=6000)
    assert "elided" not in small and small.count("--- cell") == 3


def test_find_cell_by_id_index_and_error():
    cells = [Cell(0, "a", "code", "1"), Cell(1, "b", "markdown", "# t")]
    assert find_cell(cells, "b").index == 1 and find_cell(cells, "-1").id == "b" and find_cell(cells, "0").id == "a"
    with pytest.raises(KeyError, match="no cell 'zz'"):
        find_cell(cells, "zz")


@pytest.mark.kernel
def test_read_notebook_in_a_kernel_returns_history_with_the_last_traceback(tmp_path, server, start_kernel):
    driver = start_kernel(server, cwd=tmp_path, env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history")})
    try:
        assert driver.run("data = [3, 4, 5]\nsum(data)").status == "ok"
        failed = driver.run("def ratio(a, b):\n    return a / b\n\nratio(sum(data), 0)")
        assert failed.status == "error"
        tools = driver.run("%agent tools")
        assert "read_notebook: auto" in tools.text and "read_cell: auto" in tools.text
        assert "execution history" in tools.text and "not offered" in tools.text
        for name in CELL_TOOLS:
            assert not any(line.startswith(f"{name}:") for line in tools.text.splitlines())  # no policy row
        server.add_response(calls_reply(("read_notebook", {}, "c1")))
        server.add_response(calls_reply(("read_cell", {"cell": "In[3]"}, "c2")))
        server.add_response(text_reply("ratio divides by zero: b is 0.", phase="final_answer"))
        cell = driver.run("%%agent\nWhy did my last cell fail?", timeout=90)
        assert cell.status == "ok", cell.text
        assert "ratio divides by zero" in cell.text
        first = server.requests[-3].json
        names = {t["name"] for t in first["tools"] if t["type"] == "function"}
        assert {"read_notebook", "read_cell"} <= names
        assert not names & set(CELL_TOOLS)
        read = outputs(server.requests[-2].json)["c1"]
        assert read.startswith(HISTORY_PREAMBLE)
        assert "sum(data)" in read and "[result] 12" in read
        assert "[error] ZeroDivisionError: division by zero" in read
        assert "return a / b" in read  # the traceback tail names the failing line
        assert "%%agent\nWhy did my last cell fail?" in read and "(running now: this agent turn)" in read
        assert "run_agent_cell" not in read  # the cell as typed, not IPython's transformed code
        one = outputs(server.requests[-1].json)["c2"]
        assert one.startswith("--- cell") and "[error] ZeroDivisionError" in one and "ratio(sum(data), 0)" in one
    finally:
        driver.shutdown()
        server.stop()


@pytest.mark.kernel
def test_an_error_raised_before_the_agent_loaded_is_attached_to_its_cell(tmp_path, start_kernel):
    driver = start_kernel(cwd=tmp_path, env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history")})
    try:
        assert driver.run("{}['missing']").status == "error"
        read = driver.run(
            "%load_ext jupyter_agent\nfrom jupyter_agent import get_agent\n"
            "print(get_agent().tools['read_notebook'].fn())"
        )
        assert read.status == "ok", read.text
        assert "--- cell 0 id=In[1] code [1]\n{}['missing']\n[error] KeyError: 'missing'" in read.text
    finally:
        driver.shutdown()
