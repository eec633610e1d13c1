"""Print the fault matrix: every scripted fault of issue 8, its outcome and the time it took.

Runs the scenarios of ``tests/fault_scenarios.py`` (the same ones ``tests/test_faults_*.py``
assert) over HTTP+SSE and the Responses WebSocket, one fresh scripted server and agent each, and
prints one row per scenario: outcome (status, retries, error code), seconds to the outcome,
requests (POSTs + WebSocket handshakes), the worst lag of the caller's loop, the next turn, and
whether every invariant held.

    .venv/bin/python -m benchmarks.fault_matrix [--only TEXT] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.fault_scenarios import Outcome, agent_loop, http_scenarios, run_scenario, ws_scenarios


def _row(o: Outcome, transport: str) -> list[str]:
    outcome = o.status
    if o.retries:
        outcome += f" after {o.retries} retr{'y' if o.retries == 1 else 'ies'}"
    if o.status == "failed":
        outcome += f" ({o.code})" if o.code else ""
    return [
        transport,
        o.scenario,
        outcome,
        f"{o.seconds:.2f}",
        str(o.requests),
        f"{o.caller_lag * 1000:.0f}",
        o.next_turn,
        "ok" if o.ok else "FAIL: " + "; ".join(o.problems),
    ]


async def _run(only: str | None) -> list[list[str]]:
    rows: list[list[str]] = []
    with agent_loop() as loop:
        for transport, scenarios in (("sse", http_scenarios()), ("websocket", ws_scenarios())):
            for sc in scenarios:
                if only and only.lower() not in sc.name.lower():
                    continue
                rows.append(_row(await run_scenario(sc, loop, transport=transport), transport))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="run scenarios whose name contains this text")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args(argv)
    rows = asyncio.run(_run(args.only))
    head = ["transport", "scenario", "outcome", "seconds", "requests", "caller lag ms", "next turn", "invariants"]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for r in rows:
            print("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        widths[-1] = len(head[-1])
        print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)))
    bad = [r for r in rows if r[-1] != "ok"]
    slowest = max(rows, key=lambda r: float(r[3])) if rows else None
    print(
        f"\n{len(rows)} scenarios, {len(rows) - len(bad)} kept every invariant"
        + (f"; slowest: {slowest[1]} ({slowest[0]}) {slowest[3]} s" if slowest else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
