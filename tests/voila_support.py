"""The server side of the browser tests: a Voilà server and what it relays from the kernels.

Used by :mod:`browser_support` (and through it by ``tests/test_browser.py``):

* :class:`VoilaServer` starts ``voila --no-browser --port=P --Voila.ip=127.0.0.1 NOTEBOOK`` on a free loopback
  port, waits until it answers, and always stops it and the kernels it started;
* :func:`server_log_errors` reads the errors out of its log;
* :func:`parse_kernel_message` and :func:`kernel_message_error` read the kernel messages that reach a page's
  websocket, in either of Jupyter's websocket protocols.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


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
