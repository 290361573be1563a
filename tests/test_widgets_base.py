"""The Explorer base class and the frames it makes ipympl send (odeteach.widgets.base, odeteach.widgets.frames).

The ipympl tests play the browser: they keep the picture it shows and draw every frame the kernel sends onto
it as ipympl's JavaScript does (a "full" frame clears the picture first; any frame is drawn at the top-left
corner, its transparent pixels leaving what is there). The picture must then be the kernel's figure, pixel
for pixel, after every move, at device pixel ratio 1 and 2.
"""

import io

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from odeteach.widgets import frames  # noqa: E402
from odeteach.widgets.base import Explorer, slider_values  # noqa: E402
from odeteach.widgets.stability import StabilityExplorer  # noqa: E402
from widget_support import IPYMPL, Browser  # noqa: E402

class Dot(Explorer):
    """The smallest explorer: a static line on the left, one blitted point on the right."""

    controls = ("x",)

    def __init__(self, fail_at=None, clip=True):
        self.fail_at = fail_at
        self.x = widgets.FloatSlider(min=0.0, max=1.0, step=0.1, value=0.5)
        self.readout = widgets.HTML()
        self.fig, (self.ax_left, self.ax_right) = self._figure(1, 2, (4, 2))
        self.ax_left.plot([0, 1], [0, 1], color="0.5")
        self.point, = self.ax_right.plot([0.5], [0.5], "o", clip_on=clip)
        self.ax_right.set_xlim(0, 1)
        self.ax_right.set_ylim(0, 1)
        self._animate(self.point)
        self._finish([self.readout])

    def _update(self):
        x = self.x.value
        if x == self.fail_at:
            raise ValueError("planted failure")
        self.point.set_data([x], [x])
        self.readout.value = f"x = <b>{x:.1f}</b>"


class TwoViews(Dot):
    """Dot with two looks of its right axes (limits 0–1 or 0–2), the second rendered unseen at the first draw."""

    controls = ("x", "wide")

    def __init__(self):
        self.wide = widgets.Checkbox(value=False)
        super().__init__()

    def _views(self):
        return (False, True)

    def _view(self):
        return self.ax_right.get_xlim()[1] == 2

    def _set_view(self, wide):
        self.ax_right.set_xlim(0, 2 if wide else 1)
        self.ax_right.set_ylim(0, 2 if wide else 1)

    def _update(self):
        self._set_view(self.wide.value)
        super()._update()


@pytest.fixture
def notebook_ipympl(ipympl_backend):
    """ipympl as ``%matplotlib widget`` leaves it: interactive, so a stale figure asks the page for a draw."""
    was = matplotlib.is_interactive()
    matplotlib.interactive(True)
    yield
    matplotlib.interactive(was)


def test_rendering_the_other_views_asks_the_page_for_no_draw(notebook_ipympl):
    """The first full draw renders every view's background (changing the axes and putting them back). That must
    not leave the figure asking for another draw: in lessons 3 and 7 it did, and the page and the kernel redrew the
    figure every 60 ms for as long as the page was open."""
    e = TwoViews()
    browser = Browser(e.fig.canvas)                      # answers draw requests; fails on a redraw loop
    assert e.full_draws == 1 and len(e._scenes) == 2 and browser.shows_the_figure()
    e.wide.value = True                                  # the other view: blitted from its background
    browser.answer()
    e.x.value = 1.5
    browser.answer()
    assert e.full_draws == 1 and e.blits == 2 and browser.shows_the_figure()


def test_a_change_of_limits_still_asks_for_a_draw(notebook_ipympl):
    """Holding the stale callback off while the views render must not stop the figure asking for a redraw when
    its axes really change (the test above would pass if no stale figure ever asked for one)."""
    e = TwoViews()
    browser = Browser(e.fig.canvas)
    browser.post_execute()
    assert not browser.draw_requested                    # after the first draw, nothing to draw again ...
    e.ax_left.set_xlim(0, 3)                             # ... until the axes change (not a view: a full draw)
    browser.post_execute()
    assert browser.draw_requested
    browser.answer()
    assert e.full_draws == 2 and browser.shows_the_figure()


@pytest.fixture
def ipympl_backend():
    previous = matplotlib.get_backend()
    plt.switch_backend(IPYMPL)
    yield
    plt.close("all")
    plt.switch_backend(previous)


def test_png_bytes_decodes_to_the_same_pixels():
    rng = np.random.default_rng(0)
    for shape in [(1, 1, 4), (3, 5, 4), (64, 97, 4)]:
        rgba = rng.integers(0, 256, shape, dtype=np.uint8)
        png = frames.png_bytes(rgba)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")), rgba)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 4), np.float32),
                                 np.zeros((0, 4, 4), np.uint8), np.zeros((4, 4), np.uint8)])
def test_png_bytes_rejects_what_is_not_an_rgba_image(bad):
    with pytest.raises(ValueError, match="uint8 RGBA"):
        frames.png_bytes(bad)


def test_other_canvases_keep_their_own_frames():
    e = Dot()
    assert not frames.install(e.fig.canvas)               # Agg: no browser frames to make
    assert "get_diff_image" not in vars(e.fig.canvas)


def test_an_error_in_an_update_is_a_message_not_a_traceback():
    e = Dot(fail_at=0.8)
    e.x.value = 0.8                                       # raises inside _update; update() must not
    assert "ValueError: planted failure" in e.message.value and "Traceback" not in e.message.value
    e.x.value = 0.3
    assert e.message.value == "" and "0.3" in e.readout.value


@pytest.mark.parametrize("clip", [True, False])
def test_a_blit_names_the_changed_axes_or_the_figure_for_unclipped_artists(clip):
    e = Dot(clip=clip)
    e.fig.canvas.draw()
    regions = []
    e.fig.canvas.blit = regions.append
    e.x.value = 0.2
    assert e.blits == 1 and len(regions) == 1
    expected = e.ax_right.bbox if clip else e.fig.bbox
    assert np.allclose(regions[0].bounds, expected.bounds)


@pytest.mark.parametrize("dpi_ratio", [1.0, 2.0])
def test_the_browser_shows_the_figure_after_every_move(ipympl_backend, dpi_ratio):
    e = StabilityExplorer()
    canvas = e.fig.canvas
    assert "get_diff_image" in vars(canvas)               # the Explorer installed its frames
    browser = Browser(canvas, dpi_ratio)
    assert browser.frames[0][0] == "full" and browser.shows_the_figure()
    assert canvas.get_width_height(physical=True) == tuple(int(dpi_ratio * n) for n in canvas.get_width_height())
    draws = e.full_draws
    for name in e.controls:
        control = getattr(e, name)
        values = slider_values(control)
        for v in (values[-1], values[len(values) // 3], values[0]):
            control.value = v
            browser.answer()
            assert browser.shows_the_figure(), (name, v)
    assert e.full_draws == draws and e.blits > 0          # every move blitted ...
    diffs = [shape for mode, shape in browser.frames[1:]]
    assert all(mode == "diff" for mode, _ in browser.frames[1:])
    height, width = canvas.get_width_height(physical=True)[::-1]
    assert all(h <= height and w <= width for h, w in diffs)
    assert any(h < height for h, w in diffs)              # ... and sent frames cropped below the last change


def test_a_new_size_or_a_refresh_sends_a_full_frame(ipympl_backend):
    e = Dot()
    browser = Browser(e.fig.canvas)
    e.x.value = 0.1
    assert browser.frames[-1][0] == "diff"
    browser.message("refresh")                            # a browser (re)connecting
    browser.answer()
    assert browser.frames[-1][0] == "full" and browser.shows_the_figure()
    e.x.value = 0.9
    assert browser.frames[-1][0] == "diff" and browser.shows_the_figure()
    browser.message("set_device_pixel_ratio", device_pixel_ratio=2)
    browser.answer()
    assert browser.frames[-1] == ("full", e.fig.canvas.get_width_height(physical=True)[::-1])
    e.x.value = 0.4
    assert browser.shows_the_figure()


def test_a_move_that_changes_no_pixel_sends_an_empty_frame(ipympl_backend):
    e = Dot()
    browser = Browser(e.fig.canvas)
    e.update()                                            # the same value again: the same pixels
    assert browser.frames[-1] == ("diff", (1, 1)) and browser.shows_the_figure()
    assert frames.diff_image(e.fig.canvas) is None        # nothing drawn since: nothing to send


def test_a_transparent_figure_is_sent_whole(ipympl_backend):
    """A diff frame cannot carry transparency (matplotlib's rule): such a figure goes as full frames."""
    e = Dot()
    e.fig.patch.set_alpha(0.0)
    browser = Browser(e.fig.canvas)
    e.x.value = 0.7
    browser.answer()
    assert [mode for mode, _ in browser.frames] == ["full"] * len(browser.frames)
    assert browser.shows_the_figure()
