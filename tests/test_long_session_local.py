"""Issue 14: a 30-turn conversation on the embedded model (8k window) goes on without an error,
compaction doing its job; a kernel test of structure, not wording."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.localmodel, pytest.mark.kernel, pytest.mark.timeout(1800)]

#: About 330 tokens of prompt per turn: 30 turns do not fit 8k tokens without compaction.
TOPIC = (
    "We are analysing a table of daily temperatures, rainfall and wind speed for twelve cities over "
    "ten years, stored in a pandas DataFrame called weather with columns city, date, temp_c, rain_mm "
    "and wind_kmh. "
)


def test_thirty_turns_on_the_embedded_model_compact_and_never_fail(start_kernel: Any, tmp_path: Any) -> None:
    kernel = start_kernel(env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path)})
    loaded = kernel.run(
        "%load_ext jupyter_agent\nimport jupyter_agent.magics as M\na = M.get_agent()\nprint(a.provider_name)"
    )
    assert loaded.status == "ok" and "local" in loaded.text, loaded.text
    for n in range(30):
        prompt = (
            f"Question {n + 1}. {TOPIC * 6}In one sentence: which plot would show the trend of column number {n % 5}?"
        )
        result = kernel.run(f"%%agent\n{prompt}", timeout=240)
        assert result.status == "ok", result.text
    report = kernel.run(
        "import json\n"
        "from jupyter_agent import events as ev\n"
        "print(json.dumps({\n"
        "  'statuses': [t.status for t in a.turns],\n"
        "  'errors': [e.message for t in a.turns for e in t.events if isinstance(e, ev.Error)],\n"
        "  'compactions': [e.reason for t in a.turns for e in t.events if isinstance(e, ev.Compacted)],\n"
        "  'gauges': [[e.input_tokens, e.window, e.source] for t in a.turns for e in t.events if isinstance(e, ev.ContextGauge)],\n"
        "  'first': a.transcript()[0]['role'],\n"
        "  'prompts_in_history': sum(1 for m in a.transcript() if m['role'] == 'user'),\n"
        "}))"
    )
    data = json.loads(report.text.strip().splitlines()[-1])
    assert data["statuses"] == ["completed"] * 30 and data["errors"] == []
    assert data["compactions"], data["gauges"]
    assert set(data["compactions"]) <= {"threshold", "context_length_exceeded"}
    assert all(window == 8192 and source.startswith("the embedded model") for _, window, source in data["gauges"])
    assert max(tokens for tokens, _, _ in data["gauges"]) < 8192
    assert data["first"] == "compaction"  # older turns live on as the summary
    assert data["prompts_in_history"] < 30
