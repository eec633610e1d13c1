"""Session-wide test set-up and the fixtures every test module shares.

- Saved conversations go to a temporary directory, never to the user's Jupyter data dir (kernels
  started by tests inherit the variable).
- ``server`` / ``module_server``: a scripted Responses server on 127.0.0.1 (``jupyter_agent.testing``).
- ``make_agent``: SSE agents against ``server``, closed afterwards.
- ``start_kernel``: real ipykernels through jupyter_client, shut down at the end of the module.
- ``recorded_streams`` / ``openai_spec``: data from other public projects, read from
  ``../shared/fixtures/`` (or ``$JUPYTER_AGENT_FIXTURES``); tests using them skip with the reason
  when absent. Nothing from there is committed to this repository.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.fixtures import OPENAI_SPEC, OPENAI_SPEC_FILE, RECORDED_STREAMS, shared_fixture

from .kernel_driver import KernelDriver, connect_code
from .sse_support import API_KEY

_HISTORY_DIR = tempfile.mkdtemp(prefix="jupyter-agent-test-history-")
os.environ.setdefault("JUPYTER_AGENT_HISTORY_DIR", _HISTORY_DIR)
REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionfinish(session, exitstatus):  # the pytest hook signature, unused arguments included
    shutil.rmtree(_HISTORY_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def recorded_streams() -> Path:
    """The directory of recorded OpenAI streams (``<name>.sse`` + ``<name>.json``), or skip."""
    path, reason = shared_fixture(RECORDED_STREAMS, REPO_ROOT)
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def openai_spec() -> dict[str, Any]:
    """OpenAI's published component schemas (``openai-spec-subset.json``, API 2.3.0), or skip."""
    path, reason = shared_fixture(OPENAI_SPEC, REPO_ROOT)
    if path is None or not (path / OPENAI_SPEC_FILE).is_file():
        pytest.skip(reason or f"{OPENAI_SPEC_FILE} missing in {path}")
    return json.loads((path / OPENAI_SPEC_FILE).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def wire_schema() -> Any:
    """A `WireSchema` over OpenAI's published schemas, or ``None`` when they are absent (tests that
    only *also* check conformance use this; the conformance tests themselves use ``openai_spec``)."""
    path, _reason = shared_fixture(OPENAI_SPEC, REPO_ROOT)
    if path is None or not (path / OPENAI_SPEC_FILE).is_file():
        return None
    from .wire_schema import WireSchema

    return WireSchema(json.loads((path / OPENAI_SPEC_FILE).read_text(encoding="utf-8")))


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s
    assert not s.running


@pytest.fixture(scope="module")
def module_server() -> Iterator[ScriptedServer]:
    """One scripted server for a module whose kernel outlives single tests."""
    with ScriptedServer() as s:
        yield s


AgentFactory = Callable[..., Any]


@pytest.fixture
def make_agent(server: ScriptedServer) -> Iterator[AgentFactory]:
    """Build SSE agents against the scripted server; their sessions are closed afterwards."""
    from jupyter_agent.agent import Agent

    made: list[Any] = []

    def factory(**kw: Any) -> Any:
        kw.setdefault("model", "gpt-5")
        kw.setdefault("base_url", server.base_url)
        kw.setdefault("api_key", API_KEY)
        kw.setdefault("transport", "sse")
        kw.setdefault("prewarm", False)
        kw.setdefault("max_retries", 0)
        kw.setdefault("web_search", "disabled")
        agent = Agent(**kw)
        made.append(agent)
        return agent

    yield factory
    for agent in made:
        if agent._session is not None:
            agent.agent_loop.run_sync(agent._session.aclose(), timeout=5)


KernelFactory = Callable[..., KernelDriver]


@pytest.fixture(scope="module")
def start_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelFactory]:
    """``start_kernel(server=None, *, cwd=None, env=None, transport="sse", setup="")`` -> a running kernel.

    With ``server`` the kernel first loads the extension and connects ``a`` (the agent) to it; ``setup``
    runs after that. Every kernel started here is shut down when the module ends (a test may shut one
    down earlier, e.g. to restart it on the same history).
    """
    started: list[KernelDriver] = []

    def start(
        server: ScriptedServer | None = None,
        *,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        transport: str = "sse",
        setup: str = "",
    ) -> KernelDriver:
        driver = KernelDriver(cwd=str(cwd or tmp_path_factory.mktemp("kernel")), env=env)
        started.append(driver)
        code = connect_code(server.base_url, transport=transport, extra=setup) if server is not None else setup
        if code:
            result = driver.run(code)
            assert result.status == "ok", result.text
        return driver

    yield start
    for driver in started:
        driver.shutdown()
