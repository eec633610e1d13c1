"""Issue 14 in a real kernel: the context gauge in the cell and ``%agent status``/``usage``, automatic
compaction shown in the cell, ``%agent compact`` and the marker in ``%agent history``."""

from __future__ import annotations

import pytest

from jupyter_agent.testing.replies import text_reply, usage

pytestmark = pytest.mark.kernel


def test_gauge_threshold_compaction_and_agent_compact_in_a_kernel(start_kernel, server, tmp_path):
    kernel = start_kernel(server, env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path)}, setup="a.context_window = 1000")
    server.add_response(text_reply("first answer", model="gpt-test", phase="final_answer", usage_obj=usage(900, 5)))
    first = kernel.run("%%agent\nfirst question")
    assert first.status == "ok", first.text
    shown = first.text.replace("\\_", "_")  # the markdown fallback escapes underscores
    assert "Context:" in shown and "90% used (900 / 1,000 tokens; %config Agent.context_window)" in shown
    status = kernel.run("%agent status").text
    assert "90% used" in status and "Session tokens: input 900 (cached 0), output 5 (reasoning 0)" in status
    nothing = kernel.run("%agent compact").text
    assert "Not compacted: nothing older than the latest turn to compact" in nothing

    server.add_responses(
        text_reply("a summary of the first question", model="gpt-test", usage_obj=usage(50, 5)),
        text_reply("second answer", model="gpt-test", phase="final_answer", usage_obj=usage(200, 5)),
    )
    second = kernel.run("%%agent\nsecond question")
    assert second.status == "ok", second.text
    assert "Conversation compacted (the context was nearly full): 3 history items became 3" in second.text
    assert "20% used (200 / 1,000 tokens" in second.text
    history = kernel.run("print(M.history_text(a))").text
    assert history.startswith("[compaction] [conversation compacted")
    assert "[user] first question" in history and "[user] second question" in history

    server.add_responses(
        text_reply("third answer", model="gpt-test", phase="final_answer"),
        text_reply("a shorter summary", model="gpt-test"),
    )
    kernel.run("%%agent\nthird question")
    done = kernel.run("%agent compact").text
    assert "Conversation compacted (on request)" in done
    assert (
        kernel.run("print(len(a.history), a.history[0]['content'][:40])").text.strip().startswith("5 [Summary")
    )  # summary, 2 prompts, the last turn
