"""The browser tests' leak check can fail: a key written under the server root is reported."""

from __future__ import annotations

import pytest

from .lab_server import CANARY, CANARY_ENV, jupyter_server

pytestmark = pytest.mark.browser


def test_a_leaked_key_under_the_root_fails_the_check(tmp_path):
    with pytest.raises(AssertionError, match=r"leaked into .*notes\.txt"):
        with jupyter_server(tmp_path, token="leak-check") as server:
            assert server.root == tmp_path
            (tmp_path / "notes.txt").write_text(f"key={CANARY}")
    assert CANARY_ENV.isidentifier()
