"""The frames an ipympl canvas sends to the browser, made cheaper: what :class:`~odeteach.widgets.base.Explorer`
installs on its canvas.

With ``%matplotlib widget`` every redraw (a blit included) ends in the canvas's ``get_diff_image``: it compares
the figure's pixels with the last frame sent, and PNG-encodes a frame of the figure's full size in which the
unchanged pixels are transparent ("diff" mode), or the whole figure ("full" mode). The browser draws that PNG
over what it shows, at the canvas's top-left corner (``drawImage(image, 0, 0)`` in ipympl's and matplotlib's
JavaScript; a full frame clears the canvas first). At device pixel ratio 2 the figure has four times the pixels,
and Pillow's PNG encoder (adaptive row filters, zlib level 6) then cost 36–74 ms CPU per update on the development
machine: most of an update.

:func:`diff_image` makes the same frames, decoded to the same picture in the browser, for less:

* a diff frame is cropped to the rows and columns up to the last changed pixel. The browser draws it at the
  top-left corner, as always, so every pixel it carries lands where it did; the pixels cut away were
  transparent, which draw nothing;
* :func:`png_bytes` writes the PNG itself: no row filter (filter type 0), zlib level 1. The frames are mostly
  transparent zeros, which compress well without filtering; they come out somewhat larger than Pillow's
  (tens of kB at ratio 2), a fraction of the encoding time.

The rule for a full frame is matplotlib's: the first frame, a new canvas size, a ``refresh`` from the browser
(``_force_full``), or any pixel that is not opaque (a diff frame cannot carry transparency).

:func:`install` puts :func:`diff_image` on one canvas, as an instance attribute that shadows the class's method,
when the canvas is of the WebAgg family (ipympl's, ``nbagg``'s, ``webagg``'s) and has the attributes that
method uses (``_png_is_old``, ``_force_full``, ``_last_buff``; checked with matplotlib 3.11 and ipympl 0.10);
otherwise it leaves the canvas alone and returns ``False``. ``tests/test_widgets_base.py`` plays the browser and
checks that its picture is the figure, pixel for pixel, after every move.
"""

from __future__ import annotations

import functools
import struct
import zlib

import numpy as np

__all__ = ["diff_image", "install", "png_bytes", "PNG_ZLIB_LEVEL"]

PNG_ZLIB_LEVEL = 1   # fastest zlib; the frames are mostly zeros, which compress well at any level
_CANVAS_STATE = ("get_diff_image", "get_renderer", "set_image_mode", "_png_is_old", "_force_full", "_last_buff")


def png_bytes(rgba: np.ndarray, level: int = PNG_ZLIB_LEVEL) -> bytes:
    """An (h, w, 4) uint8 RGBA array as a PNG file: 8-bit RGBA, no row filter, one zlib stream."""
    rgba = np.asarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4 or 0 in rgba.shape[:2]:
        raise ValueError(f"png_bytes takes a non-empty (height, width, 4) uint8 RGBA array; "
                         f"got {rgba.dtype} {rgba.shape}")
    rows = _png_rows(*rgba.shape[:2])
    rows[:, 1:] = rgba.reshape(rows.shape[0], -1)
    return _png_file(rows, level)


def _png_rows(height: int, width: int) -> np.ndarray:
    """PNG scanlines, zeroed: each row is its filter type (0, none), then 4 bytes per pixel."""
    return np.zeros((height, 1 + 4 * width), dtype=np.uint8)


def _png_file(rows: np.ndarray, level: int = PNG_ZLIB_LEVEL) -> bytes:
    height, width = rows.shape[0], (rows.shape[1] - 1) // 4

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)   # 8 bits, colour type 6 (RGBA), no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(memoryview(rows), level))
            + chunk(b"IEND", b""))


def diff_image(canvas):
    """The next frame for the browser (PNG bytes), or ``None`` when nothing was drawn since the last one.

    The same contract as matplotlib's ``FigureCanvasWebAggCore.get_diff_image``: it sets the image mode
    ("full" or "diff"), remembers the pixels sent and clears ``_png_is_old`` and ``_force_full``.
    """
    if not canvas._png_is_old:
        return None
    pixels = np.asarray(canvas.get_renderer().buffer_rgba())
    buff = pixels.view(np.uint32).squeeze(2)    # one uint32 per pixel: whole pixels compare in one call
    last = canvas._last_buff
    if canvas._force_full or buff.shape != last.shape or pixels[:, :, 3].min() != 255:
        canvas.set_image_mode("full")
        rows = _png_rows(*buff.shape)
        rows[:, 1:] = pixels.reshape(rows.shape[0], -1)
    else:
        canvas.set_image_mode("diff")
        changed = buff != last
        changed_rows, changed_cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        bottom, right = (changed_rows[-1] + 1, changed_cols[-1] + 1) if changed_rows.size else (1, 1)
        rows = _png_rows(bottom, right)         # nothing changed: one transparent pixel
        # the changed pixels, the others 0 (transparent), written straight into the scanlines
        np.multiply(buff[:bottom, :right], changed[:bottom, :right], out=rows[:, 1:].view(np.uint32))
    canvas._last_buff = buff.copy()
    canvas._force_full = False
    canvas._png_is_old = False
    return _png_file(rows)


def install(canvas) -> bool:
    """Make ``canvas`` send :func:`diff_image`'s frames; ``False`` (and nothing changed) for other canvases."""
    if not all(hasattr(canvas, name) for name in _CANVAS_STATE):
        return False
    canvas.get_diff_image = functools.partial(diff_image, canvas)
    return True
