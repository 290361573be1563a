"""What the explorer tests share: the figure drawn from scratch, to compare with what blitting left on the canvas."""

import io

import numpy as np


def redrawn_from_scratch(explorer) -> np.ndarray:
    """``explorer.fig`` drawn by savefig as an RGBA array of the canvas's shape.

    savefig draws every artist itself; a blit draws the changed artists over all the rest (legends
    included), so here they are drawn last too, in the blit's order, to compare pixel for pixel.
    """
    dynamic = explorer._dynamic
    zorders = [a.get_zorder() for a in dynamic]
    for i, a in enumerate(dynamic):
        a.set_zorder(100 + i)
    buf = io.BytesIO()
    try:
        explorer.fig.savefig(buf, format="rgba", dpi=explorer.fig.dpi)
    finally:
        for a, z in zip(dynamic, zorders):
            a.set_zorder(z)
    shape = np.asarray(explorer.fig.canvas.buffer_rgba()).shape
    return np.frombuffer(buf.getvalue(), dtype=np.uint8).reshape(shape)
