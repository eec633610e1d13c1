"""``read_notebook`` on a 500-cell notebook with outputs: bytes sent to the model and time, side by side
with sending the raw ``.ipynb`` (issue 13).

Run: ``.venv/bin/python -m benchmarks.bench_read_notebook``. The notebook is synthetic but shaped like
real work: every 5th cell markdown; code cells print (stdout up to a few kB), show DataFrame-like results
(text/plain + text/html), 1 in 10 a PNG figure (640x480, ~40 kB), 1 in 25 an error with a coloured
40-frame traceback. The figure is what ``read_notebook`` returns through ``notebook_tools`` (the tool
the model calls), timed over REPEAT runs; "raw" is ``json.dumps`` of the nbformat document.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import struct
import time
from typing import Any

from jupyter_agent.tools.notebook import NOTEBOOK_BUDGET, Cell, notebook_tools

CELLS = 500
REPEAT = 20


def _png(width: int, height: int, size: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    return base64.b64encode(header + os.urandom(size)).decode()


def make_notebook(n: int = CELLS) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    for i in range(n):
        cid = f"cell-{i:04d}"
        if i % 5 == 0:
            cells.append(
                {"cell_type": "markdown", "id": cid, "metadata": {}, "source": f"## Step {i}\nWhy: " + "text " * 40}
            )
            continue
        outputs: list[dict[str, Any]] = [
            {"output_type": "stream", "name": "stdout", "text": [f"row {j}: value {j * i}\n" for j in range(60)]},
            {
                "output_type": "execute_result",
                "execution_count": i,
                "metadata": {},
                "data": {
                    "text/plain": [f"   x{j}  y{j}  z{j}\n" for j in range(30)],
                    "text/html": ["<table>" + "<tr><td>1</td><td>2</td></tr>" * 200 + "</table>"],
                },
            },
        ]
        if i % 10 == 1:
            outputs.append(
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"image/png": _png(640, 480, 30_000), "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
                }
            )
        if i % 25 == 2:
            tb = ["\x1b[0;31m---------------------------------------------------------------------------\x1b[0m"]
            tb += [
                f"\x1b[0;32mFile /lib/module{j}.py:{j}\x1b[0m, in f{j}(x)\n    return f{j + 1}(x)" for j in range(40)
            ]
            tb.append("\x1b[0;31mValueError\x1b[0m: bad value")
            outputs.append({"output_type": "error", "ename": "ValueError", "evalue": "bad value", "traceback": tb})
        source = (
            f"df{i} = load(part={i})\n"
            + "".join(f"df{i}['c{j}'] = df{i}.a * {j}\n" for j in range(12))
            + f"df{i}.describe()"
        )
        cells.append(
            {"cell_type": "code", "id": cid, "metadata": {}, "execution_count": i, "source": source, "outputs": outputs}
        )
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


class _Document:
    kind = "document"

    def __init__(self, nb: dict[str, Any]) -> None:
        self.nb = nb

    def cells(self) -> list[Cell]:
        return [Cell.from_nbformat(i, c) for i, c in enumerate(self.nb["cells"])]

    def preamble(self) -> str:
        return "Source: the live notebook document."


def main() -> None:
    nb = make_notebook()
    read_notebook, read_cell = notebook_tools(lambda: _Document(nb))
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        text = read_notebook.fn()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    raw = json.dumps(nb, indent=1)
    raw_time = time.perf_counter() - t0
    cell_times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        one = read_cell.fn("cell-0251")
        cell_times.append(time.perf_counter() - t0)
    sent, raw_bytes = len(text.encode()), len(raw.encode())
    print(f"read_notebook on {CELLS} cells with outputs (budget {NOTEBOOK_BUDGET} characters), {REPEAT} runs")
    print(f"{'':28}{'bytes to the model':>20}{'~tokens (bytes/4)':>20}{'time (median)':>16}")
    print(f"{'raw .ipynb (json.dumps)':28}{raw_bytes:>20,}{raw_bytes // 4:>20,}{raw_time * 1000:>13.1f} ms")
    print(f"{'read_notebook':28}{sent:>20,}{sent // 4:>20,}{statistics.median(times) * 1000:>13.1f} ms")
    print(
        f"{'read_cell (one cell)':28}{len(one.encode()):>20,}{len(one.encode()) // 4:>20,}{statistics.median(cell_times) * 1000:>13.1f} ms"
    )
    print(f"ratio raw / read_notebook: {raw_bytes / sent:,.0f}x fewer bytes")


if __name__ == "__main__":
    main()
