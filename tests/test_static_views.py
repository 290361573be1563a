"""Explorers carry a static picture: GitHub and nbviewer show it where they cannot run the widget."""

import base64

import matplotlib
import pytest

matplotlib.use("Agg")

from odeteach.problems import damped_spiral  # noqa: E402
from odeteach.widgets import base  # noqa: E402
from odeteach.widgets.solvers import StepSizeExplorer  # noqa: E402


def test_show_displays_the_widget_view_with_a_png_of_the_figure(monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append((data, raw)))
    explorer = StepSizeExplorer(damped_spiral, precompute=False)
    base.show(explorer)
    (bundle, raw), = shown
    assert raw
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000


def test_the_png_includes_the_blitted_artists():
    """Blitted artists are 'animated', which a normal draw skips; the static picture must still hold them."""
    explorer = StepSizeExplorer(damped_spiral, precompute=False)
    assert explorer._dynamic, "the explorer should blit"
    with_artists = base.static_png(explorer.fig)
    for artist in explorer._dynamic:
        artist.set_visible(False)
    without = base.static_png(explorer.fig)
    assert with_artists != without


def test_show_needs_an_explorer():
    with pytest.raises(TypeError, match="takes an explorer"):
        base.show(object())
