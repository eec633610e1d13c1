"""Side-panel round trip to a Kernel Gateway kernel vs a local kernel, in the same run.

Two JupyterLabs on 127.0.0.1, one with ``--GatewayClient.url`` in front of ``jupyter kernelgateway``,
one with local kernels; headless Chromium opens the same notebook in each, the notebook's kernel
connects to the scripted server's echo responder, and the panel sends ``--sends`` messages. One
sample is Enter (a keydown on the panel's input) → the echoed answer rendered in the panel, timed in
the page with ``performance.now()`` and a MutationObserver. Compare the columns, not absolute values
(this host adds its own latency to every round trip).

    .venv/bin/python -m benchmarks.bench_gateway_panel [--sends 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import echo_responder
from tests.browser.gateway_server import kernel_gateway, wait_for_idle_kernel
from tests.browser.lab_server import CANARY_ENV, CHROMIUM, CHROMIUM_ARGS, jupyter_server, write_notebook

PANEL = "#jupyter-agent-panel"
TOKEN = "bench-gateway-token"

ROUND_TRIP_JS = """async ([text, timeoutMs]) => {
    const panel = document.querySelector('#jupyter-agent-panel');
    const input = panel.querySelector('.jp-AgentPanel-input');
    const seen = () => [...panel.querySelectorAll('.jp-AgentPanel-assistant')].some(e => e.textContent.includes(text));
    const answered = new Promise((resolve, reject) => {
        const obs = new MutationObserver(() => { if (seen()) { obs.disconnect(); resolve(performance.now()); } });
        obs.observe(panel, {childList: true, subtree: true, characterData: true});
        setTimeout(() => { obs.disconnect(); reject(new Error('no answer for ' + text)); }, timeoutMs);
    });
    input.value = text;
    const t0 = performance.now();
    input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
    const t1 = await answered;
    await new Promise(r => setTimeout(r, 50));
    return t1 - t0;
}"""


def measure(lab: Any, page: Any, sends: int, warmup: int, gateway: bool) -> list[float]:
    page.goto(lab.url("lab/tree/bench.ipynb") + "&reset")
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    wait_for_idle_kernel(page)
    page.evaluate("""async () => {
        const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = 0;
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }""")
    if not page.locator(PANEL).is_visible():
        page.click(f".lm-TabBar-tab[data-id='{PANEL[1:]}']")
    page.wait_for_selector(f"{PANEL}[data-status='connected']", timeout=60_000)
    samples = []
    for i in range(warmup + sends):
        ms = page.evaluate(ROUND_TRIP_JS, [f"{'gw' if gateway else 'local'}-ping-{i}", 30_000])
        if i >= warmup:
            samples.append(ms)
    return samples


def row(name: str, samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=10)
    return (
        f"| {name} | {statistics.median(samples):.0f} ms | {min(samples):.0f}-{max(samples):.0f} ms "
        f"| {q[-1]:.0f} ms | {len(samples)} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server = ScriptedServer(responder=echo_responder).start()
    results: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack, sync_playwright() as p:
            connect = (
                f"%load_ext jupyter_agent\n%agent connect --base-url {server.base_url} --provider compatible"
                f" --model gpt-echo --transport sse --api-key-env {CANARY_ENV}"
            )
            roots = {name: Path(tmp) / name for name in ("gateway", "lab-gateway", "lab-local")}
            for root in roots.values():
                root.mkdir()
            for name in ("lab-gateway", "lab-local"):
                write_notebook(roots[name] / "bench.ipynb", connect)
            gw = stack.enter_context(kernel_gateway(roots["gateway"]))
            labs = {
                "via gateway": stack.enter_context(
                    jupyter_server(roots["lab-gateway"], token=TOKEN, args=gw.lab_args, with_key=False)
                ),
                "local": stack.enter_context(jupyter_server(roots["lab-local"], token=TOKEN)),
            }
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for name, lab in labs.items():
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                results[name] = measure(lab, page, args.sends, args.warmup, name != "local")
                page.close()
            browser.close()
    finally:
        server.stop()
    print("Panel round trip: Enter -> echoed answer rendered (same run)")
    print("| kernel | median | range | p90 | sends |")
    print("|---|---|---|---|---|")
    for name, samples in results.items():
        print(row(name, samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
