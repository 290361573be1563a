"""Progress bars that read the same live, in a saved notebook and under Voilà.

``tqdm.auto`` draws an ipywidgets bar in a notebook. A saved notebook keeps only that widget's
first text fallback, so a finished run shows a bar frozen at "0%" on GitHub, and a bar whose
widget is closed shows "model not found" under Voilà. Here the bar is plain text instead: in a
Jupyter kernel it writes into one display whose content is replaced on each refresh (the saved
output is the final line, "100%|…"); elsewhere it is tqdm's usual bar on stderr.
"""

from __future__ import annotations

from tqdm.std import tqdm as _std_tqdm

__all__ = ["progress"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _DisplayLine:
    """A file-like target for tqdm that keeps one notebook display showing the latest bar."""

    encoding = "utf-8"   # tqdm draws its block characters only for a file that declares one

    def __init__(self):
        self._handle = None

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\n", "").rstrip()
        if not line:
            return
        data = {"text/plain": line}
        if self._handle is None:
            from IPython.display import display
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)

    def flush(self) -> None:
        pass


def progress(iterable=None, *, desc: str | None = None, total: int | None = None, enabled: bool = True,
             **tqdm_options):
    """A tqdm progress bar with an ETA over ``iterable`` (or a manual bar with ``total``).

    ``enabled=False`` returns a disabled bar, which iterates and accepts ``set_postfix`` and
    ``update`` but prints nothing. Other keyword arguments go to tqdm.
    """
    options = {"mininterval": 0.5, "dynamic_ncols": False, "ncols": 100, **tqdm_options}
    if enabled and _in_kernel():
        options["file"] = _DisplayLine()
    return _std_tqdm(iterable, desc=desc, total=total, disable=not enabled, leave=True, **options)
