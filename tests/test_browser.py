"""The reports render in a real browser: headless Chromium, no console errors, every image loaded.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3
and 4, messages separated by NUL bytes), so no websocket client or browser-automation package is needed.
Every request the page makes is watched: anything other than ``file:``, ``data:`` or ``about:`` fails
the test, because the reports must work offline. A full-page screenshot of each page is kept in
``tests/artifacts/`` for a person to look at.

Checked pages: the index and every reviewer report of the fixture pipeline (rendered into a temporary
folder), and, when ``make reports`` has built them, the demo study's own reports under ``reports/demo``.
Skipped with a message when Chromium is not installed (``make test-browser`` installs it).
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import research.pipeline as pipeline
from research.pipeline import Node, run

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM = next((c for c in CHROMIUM_CANDIDATES if os.access(c, os.X_OK)), shutil.which("chromium"))
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome-error:")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (make test-browser installs it)"),
]


class Chromium:
    """A headless Chromium controlled over the DevTools pipe."""

    def __init__(self, user_data_dir: Path):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_pipe() -> None:  # runs in the child: the protocol lives on fds 3 (in) and 4 (out)
            high_in, high_out = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={user_data_dir}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire_pipe)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            self.events.append(self._read_message(deadline))

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


def check_page(browser: Chromium, page: Path, screenshot: Path) -> dict:
    """Load ``page``; return its console errors, exceptions, non-local requests and broken images."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
    first_event = len(browser.events)
    browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    browser.wait_for("Page.loadEventFired", session)
    browser.drain(0.5)  # late console messages and image decoding
    images = browser.send("Runtime.evaluate", {
        "expression": "Array.from(document.images).map(i => ({src: i.src.slice(0, 40), complete: i.complete, "
                      "width: i.naturalWidth}))", "returnByValue": True}, session=session)["result"]["value"]
    height = browser.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                               "returnByValue": True}, session=session)["result"]["value"]
    shot = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1280, "height": min(int(height), 12000), "scale": 1}}, session=session)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    events = [e for e in browser.events[first_event:] if e.get("sessionId") == session]
    browser.send("Target.closeTarget", {"targetId": target})
    console = [e["params"] for e in events if e.get("method") == "Runtime.consoleAPICalled"
               and e["params"].get("type") in ("error", "assert")]
    logged = [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"
              and e["params"]["entry"].get("level") == "error"]
    exceptions = [e["params"]["exceptionDetails"] for e in events if e.get("method") == "Runtime.exceptionThrown"]
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    return {"console_errors": console + logged, "exceptions": exceptions,
            "external_requests": [u for u in requests if not u.startswith(LOCAL_SCHEMES)],
            "broken_images": [i for i in images if not i["complete"] or i["width"] == 0], "images": len(images)}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        chromium.send("Browser.getVersion", timeout=60)
    except (RuntimeError, TimeoutError) as e:
        chromium.close()
        pytest.skip(f"Chromium did not start: {e}")
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def fixture_reports(tmp_path_factory) -> Path:
    """The fixture study's reports, rendered by the pipeline into a temporary output root."""
    root = tmp_path_factory.mktemp("browser-reports")
    graph = (Node("00_alpha", "alpha", (), ("alpha",)), Node("01_beta", "beta", ("alpha",)),
             Node("02_gamma", "gamma", ("alpha",)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "package_hash", lambda root=None: "pinned-for-tests")
        stream = io.StringIO()
        summary = run(study="tests/fixtures/notebooks/study.yaml", notebooks_dir=FIXTURES, graph=graph,
                      output_root=root, jobs=2, quiet=True, stream=stream)
    assert summary.ok, stream.getvalue()
    return root / "reports" / "fixture"


def pages_of(reports: Path) -> list[Path]:
    return [reports / "index.html", *sorted(reports.glob("[0-9][0-9]_*.html"))]


def assert_renders_cleanly(browser: Chromium, page: Path, label: str) -> dict:
    outcome = check_page(browser, page, ARTIFACTS / f"{label}-{page.stem}.png")
    assert outcome["console_errors"] == [], f"{page}: console errors {outcome['console_errors']}"
    assert outcome["exceptions"] == [], f"{page}: script exceptions {outcome['exceptions']}"
    assert outcome["external_requests"] == [], f"{page}: requests outside the file {outcome['external_requests']}"
    assert outcome["broken_images"] == [], f"{page}: images not loaded {outcome['broken_images']}"
    return outcome


@pytest.mark.slow
def test_fixture_reports_render_in_chromium(browser, fixture_reports):
    pages = pages_of(fixture_reports)
    assert len(pages) == 4
    outcomes = {p.name: assert_renders_cleanly(browser, p, "fixture") for p in pages}
    assert outcomes["01_beta.html"]["images"] >= 1  # the figure, an inline PNG
    assert (ARTIFACTS / "fixture-01_beta.png").stat().st_size > 10_000


def test_demo_reports_render_in_chromium(browser):
    reports = ROOT / "reports" / "demo"
    if not (reports / "index.html").is_file():
        pytest.skip("reports/demo not built yet (make reports)")
    for page in pages_of(reports):
        assert_renders_cleanly(browser, page, "demo")


def test_the_checker_sees_broken_images_and_external_requests(browser, tmp_path):
    """The check itself catches what it is for (a missing image file, a CDN script, a console error)."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="missing.png">'
                    '<script src="https://cdn.example.invalid/x.js"></script>'
                    '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    outcome = check_page(browser, page, tmp_path / "bad.png")
    assert len(outcome["broken_images"]) == 1
    assert outcome["external_requests"] == ["https://cdn.example.invalid/x.js"]
    assert any(e.get("args", [{}])[0].get("value") == "boom" for e in outcome["console_errors"])
