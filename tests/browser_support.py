"""Drive a lesson the way a student meets it: a real Voilà server, headless Chromium, a mouse and a keyboard.

Used by ``tests/test_browser.py``. Nothing here knows about a particular lesson: it finds the
explorers by the course's widget convention (ipywidgets sliders, ``HTML``/``Label`` readouts and
an ipympl canvas displayed together in one cell's output) and reports what it saw:

* :class:`VoilaServer` starts ``voila --no-browser --port=P --Voila.ip=127.0.0.1 NOTEBOOK`` on a
  free loopback port, waits until it answers, and always stops it and the kernels it started.
* :class:`Dashboard` opens the page in Chromium, waits for the widgets and figures to render,
  moves sliders with the keyboard and the mouse, and records every error a student could meet:
  error or stderr outputs on the page, error messages the kernel sends while a slider moves
  (a callback's traceback never reaches Voilà's page, only its websocket), JavaScript errors
  (a missing labextension shows up here) and errors in the server log.

Chromium is Debian's ``chromium`` package, started by Playwright through ``executable_path``;
Playwright's own browser download is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# The flags this machine needs (no user namespaces for the sandbox, no GPU, no network chatter).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}

MISSING_CHROMIUM = (
    "The browser tests need Debian's Chromium and found no 'chromium' on PATH. "
    "Install it with 'make browser' (as root) or 'sudo apt-get install chromium', then run again. "
    "Playwright's own browser download is not used."
)


def chromium_executable() -> str | None:
    """Path of the system Chromium, or None when it is not installed."""
    return shutil.which("chromium")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (children, grandchildren …), read from /proc."""
    parent_of = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; ppid is the 2nd field after it.
        fields = stat[stat.rfind(")") + 2:].split()
        parent_of[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parent_of.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _signal_all(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2:].split()[0] != "Z"


class VoilaServer:
    """``voila NOTEBOOK`` (or ``voila FOLDER``) on a free loopback port, as a context manager that always cleans up.

    Serving one notebook is the lecture command; serving a folder lets one server run several
    lessons, each page in a kernel of its own (:meth:`url_for`). ``env`` is added to this process's
    environment for the server and its kernels (the tests pass ``ODETEACH_FAST=1``).
    """

    def __init__(self, notebook: Path, log_path: Path, env: dict | None = None, ready_timeout: float = 90.0):
        self.notebook = Path(notebook).resolve()
        self.folder = self.notebook if self.notebook.is_dir() else self.notebook.parent
        self.log_path = Path(log_path)
        self.env = {**os.environ, **(env or {})}
        self.ready_timeout = ready_timeout
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url_for(self, notebook: Path) -> str:
        """The dashboard's address: the root for a served notebook, ``/voila/render/NAME`` in a served folder."""
        notebook = Path(notebook).resolve()
        if notebook == self.notebook:
            return self.url
        return f"{self.url}voila/render/{notebook.relative_to(self.notebook).as_posix()}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "voila", "--no-browser", f"--port={self.port}", "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True", "." if self.notebook.is_dir() else self.notebook.name,
        ]

    def __enter__(self) -> "VoilaServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        for attempt in range(3):  # a port taken between free_port() and voila's bind: try another
            self.port = free_port()
            self.process = subprocess.Popen(
                self.command(), cwd=self.folder, env=self.env, stdin=subprocess.DEVNULL,
                stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            try:
                self._wait_ready()
                return self
            except _PortTaken:
                self.stop()
                self._log = open(self.log_path, "a")
            except BaseException:
                self.stop()
                raise
        raise RuntimeError(f"Voilà could not bind a free port in 3 tries; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        """Poll a static URL (not the notebook itself, which would start a kernel) until it answers."""
        deadline = time.monotonic() + self.ready_timeout
        probe = f"http://127.0.0.1:{self.port}/voila/static/"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log()
                if "Address already in use" in log or "is already in use" in log:
                    raise _PortTaken()
                raise RuntimeError(f"Voilà exited with code {self.process.returncode} before answering:\n{log[-3000:]}")
            try:
                urllib.request.urlopen(probe, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP status means the server answers
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
                time.sleep(0.2)
        raise RuntimeError(f"Voilà did not answer on {probe} within {self.ready_timeout:.0f} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and every process it started (its kernels), by their ids."""
        process, self.process = self.process, None
        if process is not None:
            family = _descendants(process.pid)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            leftovers = [pid for pid in family if _alive(pid)]
            _signal_all(leftovers, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while leftovers and time.monotonic() < deadline:
                time.sleep(0.1)
                leftovers = [pid for pid in leftovers if _alive(pid)]
            _signal_all(leftovers, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


class _PortTaken(Exception):
    pass


# tornado's report of a kernel message it was still writing to a page's websocket when the browser closed that
# page: the message is dropped with the page (jupyter_server then buffers the kernel's later messages for a
# reconnect that never comes, "Discarding N buffered messages" at shutdown). Seen once, on 2026-12-02, after
# lesson 3's page closed under load; not an error of the lesson or of the server's state.
_CLOSED_PAGE_WRITE = re.compile(r"^future: <Task finished .*WebSocketProtocol13\.write_message.*"
                                r"exception=WebSocketClosedError\(\)>")


def server_log_errors(log: str, dropped: list | None = None) -> list[str]:
    """Lines of a Voilà log that report an error (a cell that failed, an exception in the server).

    A write to a websocket the test had already closed (:data:`_CLOSED_PAGE_WRITE`: the "Task exception was never
    retrieved" block, up to its ``WebSocketClosedError`` line) is not an error; its first line goes to ``dropped``
    when a list is given, so the caller can report how often it happened. Any other traceback counts.
    """
    errors, skipping = [], False
    for line in log.splitlines():
        if _CLOSED_PAGE_WRITE.match(line):
            skipping = True
            if dropped is not None:
                dropped.append(line[:200])
            if errors and errors[-1].startswith("Task exception was never retrieved"):
                errors.pop()
            continue
        if skipping:
            if line.startswith("tornado.websocket.WebSocketClosedError"):
                skipping = False
            continue
        if (re.search(r"\bERROR \|", line) or line.startswith("Traceback (most recent call last)")
                or line.startswith("Task exception was never retrieved")):
            errors.append(line[:500])
    return errors


# --------------------------------------------------------------------------------------------
# Kernel messages seen on the page's websocket
# --------------------------------------------------------------------------------------------

def parse_kernel_message(payload) -> dict | None:
    """One kernel websocket frame as a dict (channel, msg_type, msg_id, parent_id, content), either
    protocol; None if it is not a message.

    The binary ``v1.kernel.websocket.jupyter.org`` frame is: the number of offsets (8 bytes, little
    endian), the offsets, then channel, header, parent header, metadata, content and buffers.
    """
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            header, parent, content = msg["header"], msg.get("parent_header") or {}, msg.get("content", {})
            channel = msg.get("channel", "")
        else:
            count = int.from_bytes(payload[:8], "little")
            offsets = [int.from_bytes(payload[8 * (i + 1): 8 * (i + 2)], "little") for i in range(count)]
            parts = [payload[offsets[i]: offsets[i + 1]] for i in range(count - 1)]
            channel = parts[0].decode()
            header = json.loads(parts[1])
            parent = json.loads(parts[2]) if len(parts) > 2 and parts[2] else {}
            content = json.loads(parts[4]) if len(parts) > 4 else {}
        return {"channel": channel, "msg_type": header["msg_type"], "msg_id": header.get("msg_id", ""),
                "parent_id": parent.get("msg_id", ""), "content": content}
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError, AttributeError):
        return None


def parse_kernel_frame(payload) -> tuple[str, str, dict] | None:
    """(channel, msg_type, content) of one kernel websocket frame (see :func:`parse_kernel_message`)."""
    msg = parse_kernel_message(payload)
    return None if msg is None else (msg["channel"], msg["msg_type"], msg["content"])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def kernel_message_error(msg_type: str, content: dict) -> str | None:
    """A readable line when a kernel message is an error or stderr output, else None."""
    if msg_type == "error":
        return f"kernel error: {content.get('ename')}: {content.get('evalue')}\n" + _ANSI.sub(
            "", "\n".join(content.get("traceback", []))[-2000:])
    if msg_type == "stream" and content.get("name") == "stderr":
        return "kernel stderr: " + content.get("text", "")[:1000]
    if msg_type in ("display_data", "execute_result", "update_display_data"):
        data = content.get("data", {})
        if "application/vnd.jupyter.stderr" in data:
            return "kernel stderr output: " + str(data["application/vnd.jupyter.stderr"])[:1000]
    return None


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

# In the page: has every widget rendered, every figure drawn?
_JS_RENDER_STATE = """() => {
  const loading = document.getElementById('loading');
  const spinner = loading && getComputedStyle(loading).display !== 'none';
  // Voilà ships each output holding a widget as a script tag; it becomes an lm-Widget once rendered.
  const pending = document.querySelectorAll('script[type="application/vnd.voila.cell-output+json"]').length;
  const rendered = document.querySelectorAll('.jp-OutputArea-output > .lm-Widget').length;
  // ipympl stacks two canvases: the figure, then a transparent one for the zoom rectangle.
  const figures = Array.from(document.querySelectorAll('.jupyter-matplotlib-canvas-div canvas:first-child'));
  const blank = figures.filter(c => {
    if (!c.width || !c.height) return true;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < data.length; i += 4 * 97) if (data[i] !== 0) return false;
    return true;
  });
  return {complete: document.readyState === 'complete', spinner: !!spinner, pending: pending, rendered: rendered,
          figures: figures.length, blankFigures: blank.length,
          widgets: document.querySelectorAll('.jupyter-widgets').length};
}"""

# What a student sees of one scope (a cell's outputs, or the page): plot pixels and readout text.
_JS_VIEW = """(scope) => {
  scope = scope || document.body;
  const plots = [];
  scope.querySelectorAll('.jupyter-matplotlib-canvas-div canvas:first-child').forEach(c => {
    try { plots.push(c.toDataURL()); } catch (e) { plots.push('tainted:' + c.width + 'x' + c.height); }
  });
  scope.querySelectorAll('.widget-output img, .jp-OutputArea-output img').forEach(i => plots.push(i.src));
  const readouts = [];
  scope.querySelectorAll('.widget-html, .widget-htmlmath, div.widget-inline-hbox.widget-label, .widget-output .jp-RenderedText')
       .forEach(e => readouts.push(e.innerText.trim()));
  return {plots: plots, readouts: readouts};
}"""

# Every slider handle on the page, with what the student reads next to it.
_JS_SLIDERS = """() => Array.from(document.querySelectorAll('.widget-slider')).map((s, i) => {
  const label = s.querySelector('.widget-label');
  const handle = s.querySelector('.noUi-handle');
  const area = s.closest('.jp-OutputArea') || s.closest('.jp-Cell');
  const areas = Array.from(document.querySelectorAll('.jp-OutputArea, .jp-Cell'));
  return {index: i, label: label ? label.innerText.trim() : '', hasHandle: !!handle,
          disabled: s.querySelector('[disabled]') !== null || (handle && handle.hasAttribute('disabled')),
          scope: area ? areas.indexOf(area) : -1};
})"""

# Everything on the page that is an error a student would see.
_JS_PAGE_ERRORS = """() => {
  const found = [];
  document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output.jp-mod-error, .voila-error')
    .forEach(e => found.push('error output on the page: ' + e.innerText.trim().slice(0, 800)));
  const text = document.body ? document.body.innerText : '';
  for (const marker of ['Traceback (most recent call last)', 'There was an error when executing cell',
                        'Error displaying widget', 'Error rendering output', 'Error creating view', '500 : Internal Server Error']) {
    if (text.includes(marker)) found.push('page text contains "' + marker + '"');
  }
  return found;
}"""

# Code cells must not show their source in a dashboard.
_JS_VISIBLE_CODE = """() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-Editor, .jp-CodeMirrorEditor'))
  .filter(e => e.offsetParent !== null).length"""

_JS_TITLE = """() => { const h = document.querySelector('.jp-MarkdownCell h1, .jp-RenderedMarkdown h1'); return h ? h.innerText.replace('¶', '').trim() : null; }"""


_VOILA_OUTPUT = re.compile(r'<script type="application/vnd\.voila\.cell-output\+json">(.*?)</script>', re.S)


def count_widget_outputs(html: str) -> int:
    """How many outputs of Voilà's served page are widgets (each must render as one lm-Widget)."""
    return sum("application/vnd.jupyter.widget-view+json" in m.group(1) for m in _VOILA_OUTPUT.finditer(html))


_CELL_INDEX = re.compile(r'<div cell-index="(\d+)">')


def widget_outputs(html: str) -> list[dict]:
    """Every widget output of Voilà's served page, in page order: its cell, model id and text fallback."""
    cells = [(m.start(), int(m.group(1))) for m in _CELL_INDEX.finditer(html)]
    found = []
    for m in _VOILA_OUTPUT.finditer(html):
        try:
            output = json.loads(m.group(1))
        except ValueError:
            continue
        view = (output.get("data") or {}).get("application/vnd.jupyter.widget-view+json")
        if not view:
            continue
        cell = max((index for start, index in cells if start < m.start()), default=None)
        text = (output.get("data") or {}).get("text/plain", "")
        found.append({"cell": cell, "model_id": view.get("model_id"), "text": "".join(text)[:120],
                      "output_type": output.get("output_type"),
                      "display_id": (output.get("transient") or {}).get("display_id")})
    return found


# The cells where a widget view says its model is missing (Voilà wraps each cell in <div cell-index=N>).
_JS_MISSING_MODEL_CELLS = """() => Array.from(document.querySelectorAll('.jupyter-widgets'))
  .filter(e => (e.textContent || '').startsWith('Error displaying widget'))
  .map(e => { const c = e.closest('[cell-index]'); return {cell: c ? Number(c.getAttribute('cell-index')) : null,
                                                          text: e.textContent.trim()}; })"""


def _digest(view: dict) -> dict:
    """Shorter, comparable form of a view: hashes of the plot images, the readout texts."""
    return {
        "plots": [hashlib.sha1(p.encode()).hexdigest()[:12] for p in view["plots"]],
        "readouts": list(view["readouts"]),
    }


@dataclass
class Move:
    """One slider moved, and what changed on screen because of it."""

    slider: str
    how: str
    value_before: str
    value_after: str
    has_plot: bool
    has_readout: bool
    plot_changed: bool
    readout_changed: bool
    readouts_before: list = field(default_factory=list)
    readouts_after: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.plot_changed or self.readout_changed


# Network failures for external hosts are expected here (no internet); anything else is reported.
_BENIGN_CONSOLE = re.compile(r"Failed to load resource: net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISCONNECTED|CONNECTION_REFUSED|ADDRESS_UNREACHABLE)")


class Dashboard:
    """One Voilà page in a fresh browser context, watched for errors from the first byte."""

    def __init__(self, browser, url: str, artifacts: Path):
        self.url = url
        self.artifacts = Path(artifacts)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.kernel_errors: list[str] = []
        self.js_errors: list[str] = []
        self.console_log: list[str] = []
        self.kernel_messages = 0
        self.unsettled: list[str] = []  # each settle() that timed out: the page never went quiet
        self.started: float | None = None
        self.last_frame = time.monotonic()  # when the page and the kernel last exchanged a message
        self._response = None
        self.expected_widgets: int | None = None
        self.ignored: list[str] = []  # messages seen and deliberately not counted as errors (see _on_frame)
        self._control_comms: set[str] = set()
        # What the page and the kernel said about widget models, for a "model not found" to be explained:
        self.timeline: list[dict] = []  # comm and widget-state messages, in order, with seconds since start()
        self.known_models: dict[str, str] = {}  # model id -> how the page learned it (update_states, comm_open …)
        self.closed_models: set[str] = set()  # comm_close from the kernel
        self._state_requests: dict[str, str] = {}  # msg id of a per-model request_state -> its comm id
        self.page.on("pageerror", lambda exc: self.js_errors.append(f"JavaScript exception: {exc}"))
        self.page.on("console", self._on_console)
        self.page.on("websocket", self._on_websocket)
        self._shots = 0

    # -- event handlers (called from Playwright's dispatcher) --
    def _on_console(self, message) -> None:
        line = f"[{message.type}] {message.text}"
        self.console_log.append(line[:2000])
        if message.type == "error" and not _BENIGN_CONSOLE.search(message.text):
            self.js_errors.append("console error: " + message.text[:1000])

    def _on_websocket(self, websocket) -> None:
        if "/api/kernels/" in websocket.url:
            websocket.on("framereceived", self._on_frame)
            websocket.on("framesent", self._on_sent)

    def _note(self, direction: str, msg: dict) -> None:
        """Keep the messages that create, fill or close widget models (not the figures' image traffic)."""
        kind, content = msg["msg_type"], msg["content"]
        data = content.get("data") or {}
        method = data.get("method") if isinstance(data, dict) else None
        if kind == "comm_msg" and method not in ("request_states", "update_states", "request_state"):
            if not (method == "update" and direction == "recv" and msg["parent_id"] in self._state_requests):
                return
        if kind not in ("comm_open", "comm_close", "comm_msg", "comm_info_request", "comm_info_reply",
                        "kernel_info_request", "kernel_info_reply"):
            return
        entry = {"t": round(time.monotonic() - (self.started or time.monotonic()), 3), "dir": direction,
                 "type": kind, "channel": msg["channel"]}
        if content.get("comm_id"):
            entry["comm_id"] = content["comm_id"]
        if content.get("target_name"):
            entry["target"] = content["target_name"]
        if method:
            entry["method"] = method
        if method == "update_states":
            entry["states"] = len(data.get("states") or {})
        if kind == "comm_info_reply":
            entry["comms"] = len(content.get("comms") or {})
        self.timeline.append(entry)

    def _on_sent(self, payload) -> None:
        self.last_frame = time.monotonic()
        msg = parse_kernel_message(payload)
        if msg is None:
            return
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content.get("target_name") == "jupyter.widget.control":
            self._control_comms.add(content.get("comm_id"))
        if msg["msg_type"] == "comm_msg" and (content.get("data") or {}).get("method") == "request_state":
            self._state_requests[msg["msg_id"]] = content.get("comm_id")
        self._note("sent", msg)

    def _learn_models(self, msg: dict) -> None:
        kind, content = msg["msg_type"], msg["content"]
        data = content.get("data") or {}
        if kind == "comm_msg" and data.get("method") == "update_states":
            for model_id in data.get("states") or {}:
                self.known_models.setdefault(model_id, "update_states")
        elif kind == "comm_msg" and data.get("method") == "update" and msg["parent_id"] in self._state_requests:
            self.known_models.setdefault(content.get("comm_id"), "request_state")
        elif kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.known_models.setdefault(content.get("comm_id"), "comm_open")
        elif kind == "comm_close":
            self.closed_models.add(content.get("comm_id"))

    def _on_frame(self, payload) -> None:
        self.last_frame = time.monotonic()
        msg = parse_kernel_message(payload)
        if msg is None:
            return
        self.kernel_messages += 1
        self._learn_models(msg)
        self._note("recv", msg)
        parsed = (msg["channel"], msg["msg_type"], msg["content"])
        problem = kernel_message_error(parsed[1], parsed[2])
        if problem is None:
            return
        # The widget manager opens a short-lived "jupyter.widget.control" comm to fetch every widget's
        # state, and closes it; a message racing the close makes the kernel log "No such comm: <id>".
        # That is ipywidgets' own bookkeeping, shown to nobody; a lesson's comms are never excused.
        stray = re.fullmatch(r"kernel stderr: No such comm: ([0-9a-f-]+)\s*", problem)
        if stray and stray.group(1) in self._control_comms:
            self.ignored.append(problem.strip())
            return
        self.kernel_errors.append(problem)

    # -- actions --
    def start(self, timeout_s: float = 60.0) -> None:
        """Request the page: Voilà starts a kernel and runs the notebook while the page streams in."""
        self.started = time.monotonic()
        self._response = self.page.goto(self.url, wait_until="commit", timeout=timeout_s * 1000)

    def open(self, timeout_s: float) -> float:
        """Load the page (unless :meth:`start` did) and wait until every widget and figure shows.

        Returns the seconds since the page was requested. Raises ``TimeoutError`` with the render
        state when it never settles.
        """
        if self._response is None:
            self.start(timeout_s)
        start, response = self.started, self._response
        deadline = start + timeout_s
        state = None
        while time.monotonic() < deadline:
            try:
                state = self.page.evaluate(_JS_RENDER_STATE)
            except Exception:  # the page is still streaming in; evaluate can race navigation
                state = None
            if state and state["complete"] and not state["spinner"]:
                if self.expected_widgets is None:
                    self.expected_widgets = count_widget_outputs(response.text())
                state["expected"] = self.expected_widgets
                if state["pending"] == 0 and state["rendered"] >= self.expected_widgets and state["blankFigures"] == 0:
                    break
                if self.page_errors():
                    # A failed cell: widgets after it never come. Give the others a moment, then report.
                    deadline = min(deadline, time.monotonic() + 15)
            self.page.wait_for_timeout(250)
        else:
            if self.page_errors():
                return time.monotonic() - start  # rendered as far as it goes; the caller reports the errors
            self.screenshot("timeout")
            raise TimeoutError(f"the dashboard did not finish rendering in {timeout_s:.0f} s; last state {state}")
        self.settle()
        return time.monotonic() - start

    def settle(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> bool:
        """Wait until the page has stopped changing and the kernel has stopped talking, both for ``quiet_s``.

        ipympl draws in a round trip (the kernel asks for a draw, the page asks for the image, the
        kernel sends it), so a readout can be new while the figure is still on its way.
        A page that never goes quiet (a figure redrawn over and over: ipympl's draw requests answered by draws
        that ask again) is noted in :attr:`unsettled`; the lesson tests fail on it.
        """
        deadline = time.monotonic() + timeout_s
        last, quiet_since = None, time.monotonic()
        while time.monotonic() < deadline:
            now = _digest(self.page.evaluate(_JS_VIEW, None))
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif min(time.monotonic() - quiet_since, time.monotonic() - self.last_frame) >= quiet_s:
                return True
            self.page.wait_for_timeout(150)
        self.unsettled.append(f"the page and the kernel were still exchanging messages {timeout_s:.0f} s later "
                              f"({'the page kept changing' if time.monotonic() - quiet_since < quiet_s else 'no change on the page'}"
                              f"; last message {time.monotonic() - self.last_frame:.2f} s ago)")
        return False

    def sliders(self) -> list[dict]:
        return self.page.evaluate(_JS_SLIDERS)

    def _scope(self, slider_index: int):
        handle = self.page.locator(".widget-slider").nth(slider_index)
        return handle.evaluate_handle("s => s.closest('.jp-OutputArea') || s.closest('.jp-Cell') || document.body")

    def _value(self, slider_index: int) -> str:
        handle = self.page.locator(".widget-slider").nth(slider_index).locator(".noUi-handle").first
        return handle.get_attribute("aria-valuenow") or ""

    def move_slider(self, slider_index: int, how: str = "keyboard", timeout_s: float = 30.0) -> Move:
        """Move one slider as a student would and wait for the screen to answer.

        ``how="keyboard"``: focus the handle, PageUp (PageDown when already at the top).
        ``how="mouse"``: drag the handle to 15% or 85% of the track, whichever is farther.
        """
        slider = self.page.locator(".widget-slider").nth(slider_index)
        label = (slider.locator(".widget-label").first.inner_text() or f"slider {slider_index}").strip()
        slider.scroll_into_view_if_needed()
        scope = self._scope(slider_index)
        before = _digest(self.page.evaluate(_JS_VIEW, scope))
        value_before = self._value(slider_index)
        errors_before = len(self.kernel_errors)
        handle = slider.locator(".noUi-handle").first
        start = time.monotonic()
        if how == "keyboard":
            handle.focus()
            for key in ("PageUp", "PageDown", "PageDown"):
                self.page.keyboard.press(key)
                if self._wait_value_change(slider_index, value_before):
                    break
        elif how == "mouse":
            track = slider.locator(".noUi-base").first.bounding_box()
            knob = handle.bounding_box()
            x0, y0 = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
            # Drag to 15% or 85% of the track, whichever is farther: a slider with only a few
            # positions (a SelectionSlider) snaps to a different one from anywhere.
            left, right = track["x"] + 0.15 * track["width"], track["x"] + 0.85 * track["width"]
            dx = (left if abs(left - x0) > abs(right - x0) else right) - x0
            self.page.mouse.move(x0, y0)
            self.page.mouse.down()
            self.page.mouse.move(x0 + dx / 2, y0, steps=4)
            self.page.mouse.move(x0 + dx, y0, steps=4)
            self.page.mouse.up()
            self._wait_value_change(slider_index, value_before)
        else:
            raise ValueError(f"how must be 'keyboard' or 'mouse', not {how!r}")
        value_after = self._value(slider_index)
        after = before
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and value_after != value_before:
            after = _digest(self.page.evaluate(_JS_VIEW, scope))
            if after != before or len(self.kernel_errors) > errors_before:
                break  # the screen answered, or the kernel said the callback failed
            self.page.wait_for_timeout(100)
        self.settle()
        after = _digest(self.page.evaluate(_JS_VIEW, scope))
        seconds = time.monotonic() - start
        move = Move(
            slider=label, how=how, value_before=value_before, value_after=value_after,
            has_plot=bool(before["plots"]), has_readout=bool(before["readouts"]),
            plot_changed=after["plots"] != before["plots"], readout_changed=after["readouts"] != before["readouts"],
            readouts_before=before["readouts"], readouts_after=after["readouts"], seconds=round(seconds, 2),
        )
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", label)[:30] or "slider"
        self.screenshot(f"{how}_{slider_index}_{safe}", element=scope)
        return move

    def _wait_value_change(self, slider_index: int, value_before: str, timeout_s: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._value(slider_index) != value_before:
                return True
            self.page.wait_for_timeout(50)
        return False

    # -- what the page shows --
    def page_errors(self) -> list[str]:
        try:
            return self.page.evaluate(_JS_PAGE_ERRORS)
        except Exception:
            return []

    def all_errors(self) -> list[str]:
        return [*self.page_errors(), *self.kernel_errors, *self.js_errors]

    def states_reply_seconds(self) -> float | None:
        """Seconds from the page's ``request_states`` to the kernel's ``update_states`` (None if either is missing).

        jupyterlab_widgets 3.0.17's views gave up on a model after 2 s, and a reply near that limit failed them
        (tests/test_browser.py::test_widget_views_survive_a_late_state_reply); the pinned 3.0.16 waits for it.
        """
        sent = [e["t"] for e in self.timeline if e.get("method") == "request_states"]
        got = [e["t"] for e in self.timeline if e.get("method") == "update_states"]
        return round(got[0] - sent[0], 3) if sent and got else None

    def kernel_info_seconds(self) -> float | None:
        """Seconds from the page's ``kernel_info_request`` to its reply: the manager asks for the widgets' states
        only after it, so this wait and :meth:`states_reply_seconds` together are how long the views wait."""
        sent = [e["t"] for e in self.timeline if e.get("type") == "kernel_info_request"]
        got = [e["t"] for e in self.timeline if e.get("type") == "kernel_info_reply"]
        return round(got[0] - sent[0], 3) if sent and got else None

    def widget_models(self) -> dict:
        """What the page knew of the widgets the lesson displayed, to tell why a view shows "model not found".

        ``outputs``: every widget output of the served page (cell, model id, text fallback) with how the page
        learned its model: from the kernel's ``update_states`` reply (every widget open in the kernel when the
        page asked), a per-model ``request_state`` reply (the widget manager's slower path, taken when
        ``update_states`` does not come within its 4 s), or a ``comm_open`` the kernel sent later; ``None``
        when it never did, i.e. the widget was closed in the kernel before the page asked.
        ``not_found_views``: the cells where a view shows "Error displaying widget". ``timeline``: the comm
        messages that create, fill or close widget models, in order, in seconds since the page was requested.
        """
        try:
            views = self.page.evaluate(_JS_MISSING_MODEL_CELLS)
        except Exception as exc:
            views = [{"cell": None, "text": f"could not read the page: {exc}"}]
        try:
            outputs = widget_outputs(self._response.text()) if self._response is not None else []
        except Exception:
            outputs = []
        for output in outputs:
            output["page_learned"] = self.known_models.get(output["model_id"])
            output["closed"] = output["model_id"] in self.closed_models
        return {
            "seconds_since_request": round(time.monotonic() - (self.started or time.monotonic()), 1),
            "widget_outputs": len(outputs),
            "models_learned": len(self.known_models),
            "per_model_requests": sum(e.get("method") == "request_state" for e in self.timeline),
            "states_reply_s": self.states_reply_seconds(),
            "kernel_info_s": self.kernel_info_seconds(),
            "not_found_views": views,
            "never_learned": [o for o in outputs if not o["page_learned"]],
            "outputs_in_those_cells": [o for o in outputs if o["cell"] in {v["cell"] for v in views}],
        }

    def visible_code_cells(self) -> int:
        return self.page.evaluate(_JS_VISIBLE_CODE)

    def title(self) -> str | None:
        return self.page.evaluate(_JS_TITLE)

    def render_state(self) -> dict:
        return self.page.evaluate(_JS_RENDER_STATE)

    def screenshot(self, name: str, element=None) -> Path | None:
        """Save a PNG under the artifacts folder; never raises (a screenshot is evidence, not a test)."""
        self._shots += 1
        path = self.artifacts / f"{self._shots:02d}_{name}.png"
        try:
            if element is not None:
                element.as_element().screenshot(path=str(path), timeout=10_000)
            else:
                self.page.screenshot(path=str(path), timeout=10_000)
            return path
        except Exception:
            return None

    def save_evidence(self) -> None:
        """The page's HTML and the browser console, for a failing run to be read afterwards."""
        try:
            (self.artifacts / "page.html").write_text(self.page.content())
        except Exception:
            pass
        (self.artifacts / "console.txt").write_text("\n".join(self.console_log))
        (self.artifacts / "kernel_errors.txt").write_text("\n\n".join(self.kernel_errors))
        (self.artifacts / "comm_timeline.json").write_text(json.dumps(
            {"timeline": self.timeline, "known_models": self.known_models, "closed": sorted(self.closed_models)},
            indent=1))

    def close(self) -> None:
        try:
            self.context.close()
        except Exception:
            pass
