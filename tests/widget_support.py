"""What the explorer tests share: the figure drawn from scratch, to compare with what blitting left on the canvas,
and :class:`Browser`, which plays ipympl's front end."""

import io

import matplotlib
import numpy as np
from PIL import Image

IPYMPL = "module://ipympl.backend_nbagg"


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


class Browser:
    """What ipympl's front end shows: it asks for the first draw, answers each ``draw`` request with a
    ``draw`` message, and composes the PNG frames it receives the way its JavaScript does (``image.onload``
    in ipympl 0.10's widget: a full frame replaces the picture, a diff frame is drawn over it at (0, 0))."""

    def __init__(self, canvas, dpi_ratio=1.0):
        self.canvas, self.picture, self.frames, self.draw_requested = canvas, None, [], False
        send_json, send_binary = canvas.send_json, canvas.send_binary

        def on_json(content):
            self.draw_requested |= content["type"] == "draw"
            return send_json(content)

        def on_binary(data):
            self.receive(data, canvas._current_image_mode)
            return send_binary(data)

        canvas.send_json, canvas.send_binary = on_json, on_binary
        # the messages a displayed ipympl figure sends, in its order (ipympl 0.10 send_initialization_message)
        if dpi_ratio != 1:
            self.message("set_dpi_ratio", dpi_ratio=dpi_ratio)
            self.message("set_device_pixel_ratio", device_pixel_ratio=dpi_ratio)
        for kind in ("refresh", "send_image_mode", "initialized"):
            self.message(kind)
        self.answer()

    def message(self, kind, **content):
        self.canvas._handle_message(self.canvas, {"type": kind, **content}, [])
        self.post_execute()   # ipykernel runs IPython's post_execute hooks after every comm message

    def post_execute(self):
        """pyplot's post_execute hook (in interactive mode, as %matplotlib widget leaves it): a stale figure asks
        the page for a draw. ipykernel runs it after every cell and every comm message."""
        if matplotlib.is_interactive() and self.canvas.figure.stale:
            self.canvas.draw_idle()

    def answer(self, max_rounds=10):
        """Answer draw requests as the page does, until the kernel asks for no more; a figure still asking
        after ``max_rounds`` full draws is in a redraw loop, which in a browser never ends."""
        for _ in range(max_rounds):
            if not self.draw_requested:
                return
            self.draw_requested = False
            self.message("draw")
        if self.draw_requested:
            raise AssertionError(f"the figure still asks for a draw after {max_rounds} full draws: a redraw loop")

    def receive(self, png, mode):
        image = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
        self.frames.append((mode, image.shape[:2]))
        if mode == "full":                        # clearRect, then the frame: its pixels as they are
            self.picture = image.copy()
            return
        alpha = image[:, :, 3]
        assert np.isin(alpha, (0, 255)).all(), "a diff frame with translucent pixels would blend in the browser"
        h, w = image.shape[:2]
        region = self.picture[:h, :w]              # drawImage(image, 0, 0): the top-left corner
        region[alpha == 255] = image[alpha == 255]

    def shows_the_figure(self):
        return np.array_equal(self.picture, np.asarray(self.canvas.buffer_rgba()))
