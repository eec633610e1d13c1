"""Voice widget in real JupyterLab + headless Chromium with a fake microphone fed from a WAV.

The scripted realtime server runs in this (pytest) process; the notebook's widget connects to it
from the kernel. Chromium plays an espeak-ng WAV as the microphone; the server must receive PCM16
frames whose duration matches the WAV within 10 %, and the audio it sends back must reach the
widget's playback queue.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_agent.testing.realtime import RealtimeConn, RealtimeServer, RtSend, reply_to_audio, session_created, tone

from .lab_server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, jupyter_server

pytestmark = pytest.mark.browser

FIXTURE = ROOT / "tests" / "fixtures" / "audio" / "hello_24k.wav"
PHRASE = "Hello from the jupyter agent test fixture."
ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
SAMPLE_RATE = 24000


def speech_wav() -> Path:
    """The fixture WAV (24 kHz mono PCM16), made with espeak-ng + sox -D when missing."""
    if FIXTURE.exists():
        return FIXTURE
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to make the fake-microphone WAV")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    tmp = FIXTURE.with_suffix(".tmp.wav")
    speech = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", PHRASE], check=True, capture_output=True
    ).stdout
    subprocess.run(
        [
            "sox",
            "-D",
            "-t",
            "wav",
            "-",
            "-r",
            str(SAMPLE_RATE),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            str(tmp),
        ],
        input=speech,
        check=True,
        capture_output=True,
    )
    tmp.replace(FIXTURE)
    return FIXTURE


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def notebook(url: str, *, magic: bool = False) -> dict:
    """One cell that shows the voice widget: through ``%agent voice`` (as a user does) or ``show_voice``."""
    if magic:
        src = (
            "%load_ext jupyter_agent\n"
            f"%config Agent.realtime_url = {url!r}\n"
            "%config Agent.realtime_dialect = 'backend'\n"
            "%config Agent.instructions = 'browser test'\n"
            "%agent voice"
        )
    else:
        src = (
            "from jupyter_agent.realtime import show_voice\n"
            f"w = show_voice({{'url': {url!r}, 'dialect': 'backend', 'prompt': 'browser test'}})\n"
            "w"
        )
    return {
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("voice-lab")
    with jupyter_server(root, token="voicetoken") as server:
        yield f"{server.base}|{server.token}", root


def open_and_run(page: object, base: str, token: str, name: str) -> object:
    """Open notebook ``name`` in JupyterLab, run its cell and return the mic button."""
    page.goto(f"{base}/lab/tree/{name}?token={token}&reset")  # type: ignore[attr-defined]
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=30000)  # type: ignore[attr-defined]
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=30000)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => /\\|\\s*Idle/.test(document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar')"
        "?.textContent || '')",
        timeout=30000,
    )
    page.click(".jp-Notebook .jp-Cell .cm-content")  # type: ignore[attr-defined]
    page.keyboard.press("Shift+Enter")  # type: ignore[attr-defined]
    try:
        return page.wait_for_selector(".ja-voice .ja-voice-mic", timeout=30000)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure: keep a screenshot, then fail with the outputs
        page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"))  # type: ignore[attr-defined]
        outputs = page.locator(".jp-OutputArea").all_inner_texts()  # type: ignore[attr-defined]
        raise AssertionError(f"widget did not render; cell outputs: {outputs}") from None


def test_microphone_permission_denied_shows_message(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    base_token, root = lab
    base, token = base_token.split("|")
    ARTIFACTS.mkdir(exist_ok=True)
    with RealtimeServer() as rs:
        (root / "denied.ipynb").write_text(json.dumps(notebook(rs.http_url)))
        args = [a for a in ARGS if a != "--use-fake-ui-for-media-stream"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                page = browser.new_context(viewport={"width": 1300, "height": 850}).new_page()
                page.context.clear_permissions()
                mic = open_and_run(page, base, token, "denied.ipynb")
                mic.click()
                page.wait_for_function(
                    "() => (document.querySelector('.ja-voice').dataset.error || '') !== ''", timeout=15000
                )
                page.screenshot(path=str(ARTIFACTS / "voice-widget-denied.png"))
                text = page.locator(".ja-voice-error").inner_text()
                assert page.locator(".ja-voice").get_attribute("data-mic") != "on"
            finally:
                browser.close()
        assert rs.records == []  # nothing was sent
    assert "permission was denied" in text, text


def test_fake_microphone_round_trip(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    wav = speech_wav()
    expected = wav_seconds(wav)
    base_token, root = lab
    base, token = base_token.split("|")
    back = tone(0.6, 330.0)
    ARTIFACTS.mkdir(exist_ok=True)
    with RealtimeServer(
        RealtimeConn([RtSend(session_created("sess_browser"))], reactions=[reply_to_audio(back, after=25)])
    ) as rs:
        (root / "voice.ipynb").write_text(json.dumps(notebook(rs.http_url, magic=True)))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=[*ARGS, f"--use-file-for-fake-audio-capture={wav}%noloop"]
            )
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 850})
                mic = open_and_run(page, base, token, "voice.ipynb")
                page.screenshot(path=str(ARTIFACTS / "voice-widget-ready.png"))
                assert mic is not None
                mic.click()
                root_el = page.locator(".ja-voice")
                # the server answers after 25 frames; wait for the playback queue to get all of it
                page.wait_for_function(
                    "n => Number(document.querySelector('.ja-voice').dataset.playbackSamplesQueued || 0) >= n",
                    arg=len(back) // 2,
                    timeout=20000,
                )
                # speak the whole file, then stop the microphone
                rec = rs.wait_for_connections(1, timeout=10)[0]
                t_end = time.monotonic() + expected + 6
                while time.monotonic() < t_end and rec_voiced_end(rs) is None:
                    time.sleep(0.2)
                time.sleep(0.3)
                mic.click()
                page.wait_for_function("() => document.querySelector('.ja-voice').dataset.mic === 'off'")
                # the reply's transcript is shown in the cell
                page.wait_for_function(
                    "() => (document.querySelector('.ja-voice-transcript')?.textContent || '').includes('I hear you.')",
                    timeout=10000,
                )
                transcript_text = page.locator(".ja-voice-transcript").inner_text()
                page.screenshot(path=str(ARTIFACTS / "voice-widget-after.png"))
                sent_frames = int(root_el.get_attribute("data-frames-sent") or 0)
                queued = int(root_el.get_attribute("data-playback-samples-queued") or 0)
                chunks = int(root_el.get_attribute("data-playback-chunks-received") or 0)
                error = root_el.get_attribute("data-error")
            finally:
                browser.close()
        rs.wait_for(lambda: len(rs.records[0].audio_frames()) >= sent_frames, timeout=5)
        rec = rs.records[0]
    frames = rec.audio_frames()
    pcm = rec.audio_pcm()
    voiced = voiced_seconds(pcm)
    total = len(pcm) / 2 / SAMPLE_RATE
    expected_voiced = voiced_seconds(wav_pcm(wav))
    envelope_r = envelope_correlation(wav_pcm(wav), pcm)
    report = {
        "envelope_correlation": round(envelope_r, 3),
        "wav_seconds": round(expected, 3),
        "wav_voiced_seconds": round(expected_voiced, 3),
        "received_seconds": round(total, 3),
        "received_voiced_seconds": round(voiced, 3),
        "frames": len(frames),
        "browser_frames_sent": sent_frames,
        "frame_samples": sorted({len(f) // 2 for f in frames}),
        "playback_chunks": chunks,
        "playback_samples_queued": queued,
        "error": error,
    }
    (ARTIFACTS / "voice-widget-figures.json").write_text(json.dumps(report, indent=2))
    print(report)
    assert not error
    assert rec.frames[0] == {
        "type": "session.create",
        "session": {"backend_prompt": "browser test", "conversation_id": rec.frames[0]["session"]["conversation_id"]},
    }
    assert len(frames) == sent_frames
    assert all(len(f) == 960 for f in frames)  # 480 samples = 20 ms at 24 kHz
    assert all(f["sample_rate"] == 24000 and f["num_channels"] == 1 for f in rec.of_type("response.input_audio.delta"))
    # the speech the server heard lasts as long as the speech in the WAV (within 10 %)
    assert abs(voiced - expected_voiced) <= 0.1 * expected_voiced, report
    assert total >= 0.9 * expected, report
    assert envelope_r > 0.7, report  # it is the WAV's speech, resampled, not just any sound
    assert chunks >= 3 and queued == len(back) // 2, report
    assert "I hear you." in transcript_text, transcript_text


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


def voiced_seconds(pcm: bytes, threshold: int = 500) -> float:
    """Seconds from the first to the last sample above ``threshold`` (PCM16 LE mono at 24 kHz)."""
    import array

    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    loud = [i for i, v in enumerate(samples) if abs(v) > threshold]
    return (loud[-1] - loud[0]) / SAMPLE_RATE if loud else 0.0


def _samples(pcm: bytes) -> list[int]:
    import array

    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tolist()


def envelope_correlation(ref: bytes, got: bytes, window: int = 1200, threshold: int = 500) -> float:
    """Pearson correlation of 50 ms RMS envelopes, aligned at the first loud sample of each."""
    a, b = _samples(ref), _samples(got)
    a = a[next(i for i, v in enumerate(a) if abs(v) > threshold) :]
    b = b[next(i for i, v in enumerate(b) if abs(v) > threshold) :]
    n = min(len(a), len(b)) // window

    def env(x: list[int]) -> list[float]:
        return [(sum(v * v for v in x[k * window : (k + 1) * window]) / window) ** 0.5 for k in range(n)]

    ea, eb = env(a), env(b)
    ma, mb = sum(ea) / n, sum(eb) / n
    cov = sum((p - ma) * (q - mb) for p, q in zip(ea, eb, strict=True))
    va = sum((p - ma) ** 2 for p in ea) ** 0.5
    vb = sum((q - mb) ** 2 for q in eb) ** 0.5
    return cov / (va * vb) if va and vb else 0.0


def rec_voiced_end(rs: RealtimeServer) -> float | None:
    """Seconds of trailing silence (>= 1 s) after speech in the received audio, else None."""
    import array

    pcm = rs.records[0].audio_pcm()
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    loud = [i for i in range(0, len(samples), 24) if abs(samples[i]) > 500]
    if not loud:
        return None
    tail = (len(samples) - loud[-1]) / SAMPLE_RATE
    return tail if tail >= 1.0 else None
