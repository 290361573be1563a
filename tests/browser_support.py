"""Drive a lesson the way a student meets it: a real Voilà server, headless Chromium, a mouse and a keyboard.

Used by ``tests/test_browser.py``. Nothing here knows about a particular lesson: it finds the
explorers by the course's widget convention (ipywidgets sliders, ``HTML``/``Label`` readouts and
an ipympl canvas displayed together in one cell's output) and reports what it saw:

* :class:`VoilaServer` (from :mod:`voila_support`) starts ``voila --no-browser --port=P --Voila.ip=127.0.0.1
  NOTEBOOK`` on a free loopback port, waits until it answers, and always stops it and the kernels it started.
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
import re
import shutil
import time
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


try:  # the server side lives in its own module (tests/ may become a package one day)
    from .voila_support import (VoilaServer, free_port, kernel_message_error, parse_kernel_frame,  # noqa: F401
                                parse_kernel_message, server_log_errors)
except ImportError:
    from voila_support import (VoilaServer, free_port, kernel_message_error, parse_kernel_frame,  # noqa: F401
                               parse_kernel_message, server_log_errors)


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------
try:
    from .page_probes import (JS_MISSING_MODEL_CELLS, JS_PAGE_ERRORS, JS_RENDER_STATE, JS_SLIDERS,  # noqa: F401
                              JS_TITLE, JS_VIEW, JS_VISIBLE_CODE, digest, count_widget_outputs, widget_outputs)
except ImportError:
    from page_probes import (JS_MISSING_MODEL_CELLS, JS_PAGE_ERRORS, JS_RENDER_STATE, JS_SLIDERS,  # noqa: F401
                             JS_TITLE, JS_VIEW, JS_VISIBLE_CODE, digest, count_widget_outputs, widget_outputs)


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
                state = self.page.evaluate(JS_RENDER_STATE)
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
            now = digest(self.page.evaluate(JS_VIEW, None))
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
        return self.page.evaluate(JS_SLIDERS)

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
        before = digest(self.page.evaluate(JS_VIEW, scope))
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
            after = digest(self.page.evaluate(JS_VIEW, scope))
            if after != before or len(self.kernel_errors) > errors_before:
                break  # the screen answered, or the kernel said the callback failed
            self.page.wait_for_timeout(100)
        self.settle()
        after = digest(self.page.evaluate(JS_VIEW, scope))
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
            return self.page.evaluate(JS_PAGE_ERRORS)
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
            views = self.page.evaluate(JS_MISSING_MODEL_CELLS)
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
        return self.page.evaluate(JS_VISIBLE_CODE)

    def title(self) -> str | None:
        return self.page.evaluate(JS_TITLE)

    def render_state(self) -> dict:
        return self.page.evaluate(JS_RENDER_STATE)

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
