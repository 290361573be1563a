"""What every explorer shares: the :class:`Explorer` base class, the figure's view, the colours and
the axis and warning helpers.

An explorer builds its controls and one matplotlib figure once; moving a control only moves
artists (by blitting when the explorer names them with :meth:`Explorer._animate`).
"""

from __future__ import annotations

import base64
import html
import io
import time
import warnings

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator
from matplotlib.transforms import Bbox

from . import frames

__all__ = [
    "Explorer", "figure_view", "figure_widget", "show", "static_png", "slider_values", "style_axes", "warning_html",
    "ACCEPTED_COLOUR", "REJECTED_COLOUR", "EXACT_COLOUR", "ADJOINT_COLOUR",
]

ACCEPTED_COLOUR = "#1f77b4"   # a numerical solution, accepted steps, backprop
REJECTED_COLOUR = "#d62728"   # rejected steps, warnings, reference lines to beat
EXACT_COLOUR = "0.55"         # the exact or reference solution
ADJOINT_COLOUR = "#2ca02c"    # the adjoint method


def static_png(fig) -> str:
    """The figure as it is now, a base64-encoded PNG (what a notebook output's ``image/png`` holds)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)   # savefig also draws blitted (animated) artists
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def show(explorer) -> None:
    """Display an explorer live, with a picture of its first state for viewers that cannot run widgets.

    The output carries the widget view, which JupyterLab and Voilà draw as the live explorer, and a PNG of
    ``explorer.fig`` as it is now, which GitHub and nbviewer show in its place (they render no widgets).
    """
    from IPython.display import display
    if not (isinstance(getattr(explorer, "widget", None), widgets.Widget) and hasattr(explorer, "fig")):
        raise TypeError(f"show() takes an explorer (an object with .widget and .fig, e.g. StepSizeExplorer(...)); "
                        f"got {type(explorer).__name__}. To show a bare widget, use display(widget).")
    bundle = explorer.widget._repr_mimebundle_()
    bundle["image/png"] = static_png(explorer.fig)
    display(bundle, raw=True)


def figure_view(fig):
    """The widget that shows ``fig``, and a function to call after each redraw.

    With ipympl (``%matplotlib widget``) the canvas is itself a widget and redraws itself on
    ``draw_idle``. Otherwise (inline backend, Agg in tests) the figure is shown as an image in an
    ``Output`` widget that is re-rendered after each update, when a kernel is there to show it.
    """
    if isinstance(fig.canvas, widgets.DOMWidget):
        fig.canvas.header_visible = False
        fig.canvas.toolbar_visible = False
        fig.canvas.footer_visible = False
        return fig.canvas, lambda: None
    out = widgets.Output()

    def refresh():
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with ipywidgets
            return
        if get_ipython() is None:
            return
        from IPython.display import display
        with out:
            out.clear_output(wait=True)
            display(fig)

    return out, refresh


def figure_widget(fig):
    """The widget that shows ``fig`` now: :func:`figure_view`'s view, with the figure already drawn into
    it when that view is an ``Output`` (inline backend in a kernel). Explorers that redraw through
    ipympl's canvas need nothing more."""
    view, refresh = figure_view(fig)
    refresh()
    return view


def style_axes(ax, log_x=False, log_y=False, n_ticks=4):
    """Few ticks and small labels: tick labels are most of a redraw's cost."""
    ax.xaxis.set_major_locator(LogLocator(numticks=n_ticks) if log_x else MaxNLocator(n_ticks))
    ax.yaxis.set_major_locator(LogLocator(numticks=n_ticks) if log_y else MaxNLocator(n_ticks))
    if log_x:
        ax.xaxis.set_minor_locator(NullLocator())
    if log_y:
        ax.yaxis.set_minor_locator(NullLocator())
    ax.tick_params(labelsize=8)


def warning_html(text: str) -> str:
    """``text`` as a red warning line for an explorer's message or readout."""
    return f"<span style='color:{REJECTED_COLOUR}'>⚠ {html.escape(text)}</span>"


def slider_values(slider) -> list:
    """Every value a slider can take, in order (for precomputation and the benchmark)."""
    if isinstance(slider, widgets.FloatLogSlider):
        n = int(round((slider.max - slider.min) / slider.step))
        return [float(slider.base ** (slider.min + k * slider.step)) for k in range(n + 1)]
    if isinstance(slider, (widgets.IntSlider, widgets.FloatSlider)):
        n = int(round((slider.max - slider.min) / slider.step))
        vals = [slider.min + k * slider.step for k in range(n + 1)]
        return [int(v) for v in vals] if isinstance(slider, widgets.IntSlider) else [round(float(v), 10) for v in vals]
    if hasattr(slider, "options"):
        return [o[1] if isinstance(o, tuple) else o for o in slider.options]
    raise TypeError(f"don't know the values of a {type(slider).__name__}")


class Explorer:
    """Base class: controls as attributes, one figure made once, safe updates, a cache.

    A subclass builds its controls and artists, lists the controls' attribute names in
    ``controls`` and the readout widgets in ``readouts``, then calls ``self._finish()``. It
    implements ``_update()``, which reads the controls and mutates the artists. Any exception in
    an update is shown in ``self.message`` instead of reaching the user as a traceback.

    Blitting (opt-in): a subclass that calls ``self._animate(artist, …)`` before ``_finish`` names
    the only artists its updates change. Everything else (axes, ticks, labels, legends: the text
    that makes a full redraw slow) is drawn once into a cached background, on every full draw of
    the canvas (a ``draw_event``). An update then restores that background, draws the named
    artists over it and blits: no text is laid out again. When the background no longer matches
    the figure (first draw, an axis limit changed, the canvas was resized), the update asks for a
    full redraw with ``draw_idle`` instead, which refreshes the background. Without
    ``_animate`` every update is a full ``draw_idle``.

    Views (opt-in): an explorer whose axes take one of a few fixed looks (one set of limits per system, a log
    or a linear cost axis) lists them in ``_views()``, says which look the axes have now in ``_view()`` and how
    to give them one in ``_set_view(view)``. Each full draw then also renders every other view's background once per canvas size,
    so that switching views blits instead of laying out every tick label again.

    With ipympl, each redraw ends in a PNG frame for the browser, which at a device pixel ratio of 2 cost
    more than everything else in an update. ``_finish`` therefore installs :func:`odeteach.widgets.frames.diff_image`
    on the canvas (:func:`odeteach.widgets.frames.install`): the same frames, cropped to the last changed
    pixel and encoded without row filters. Other canvases (Agg, inline) are left as they are.
    """

    controls: tuple[str, ...] = ()
    _dynamic: tuple = ()

    def _figure(self, nrows, ncols, figsize, **kwargs):
        with plt.ioff():
            fig, axes = plt.subplots(nrows, ncols, figsize=figsize, dpi=80, **kwargs)
        return fig, axes

    def _animate(self, *artists):
        """Name the artists that updates change; they are drawn over a cached background."""
        self._dynamic = tuple(artists)
        for artist in artists:
            artist.set_animated(True)

    def _finish(self, readouts):
        self.message = widgets.HTML("")
        self.view, self._refresh = figure_view(self.fig)
        frames.install(self.fig.canvas)   # cheaper browser frames (ipympl); a no-op for other canvases
        self._background = None
        self._background_key = None
        self._scenes, self._prewarming = {}, False   # one background per view and canvas size (see _views)
        self.full_draws = 0      # full redraws of the figure so far (for tests and the benchmark)
        self.blits = 0           # updates drawn by blitting
        if self._dynamic:
            for ax in self.fig.axes:   # freeze autoscaling: updates change data, never limits
                ax.set_xlim(ax.get_xlim())
                ax.set_ylim(ax.get_ylim())
            self.fig.canvas.mpl_connect("draw_event", self._on_draw)
        for name in self.controls:
            getattr(self, name).observe(self._on_change, names="value")
        controls = [getattr(self, name) for name in self.controls]
        self.widget = widgets.VBox([widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")),
                                    self.view, widgets.HBox(readouts), self.message])
        self.update()

    def _on_change(self, change=None):
        self.update()

    def _figure_key(self):
        """What the cached background depends on: the canvas size, every axis's limits and the view."""
        return (self.fig.canvas.get_width_height(physical=True), self.fig.dpi,
                tuple((ax.get_xlim(), ax.get_ylim()) for ax in self.fig.axes), self._view())

    # The views of an explorer whose axes take one of a few fixed looks; none by default.
    def _views(self):
        return ()

    def _view(self):
        return None

    def _set_view(self, view):  # pragma: no cover - only explorers with views call it
        raise NotImplementedError

    def _on_draw(self, event):
        """After a full draw (which skips animated artists): keep the background, draw the artists;
        with views, render the other views' backgrounds too."""
        canvas = self.fig.canvas
        if canvas.is_saving() or self._prewarming:   # savefig draws the animated artists itself, at its own size
            return
        self.full_draws += 1
        self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._background_key = self._figure_key()
        if self._views():
            self._render_views()
        self._draw_dynamic()

    def _render_views(self):
        """Render each view's background that this canvas size lacks, then put the shown view's picture back."""
        canvas, shown, size = self.fig.canvas, self._view(), self._background_key[:2]
        self._scenes = {k: v for k, v in self._scenes.items() if k[:2] == size}   # drop other canvas sizes
        self._scenes[self._background_key] = self._background
        renderer = canvas.get_renderer()
        # Changing a view marks the figure stale, and a stale figure asks for a draw: in a kernel, IPython's
        # post_execute hook (which ipykernel runs after every comm message, a browser's "draw" included) calls
        # draw_idle on it; in a plain interpreter, pyplot's stale callback does. With ipympl that is a "draw"
        # request to the browser, which asks back for a full draw, which lands here again: the figure was redrawn
        # every 60 ms for as long as the page was open. The shown view is put back as it was drawn, so the canvas
        # shows the figure as it is: the callback is held off meanwhile, and the figure is not stale after.
        stale_callback, self.fig.stale_callback = self.fig.stale_callback, None
        self._prewarming = True
        try:
            for view in self._views():
                self._set_view(view)
                key = self._figure_key()
                if key not in self._scenes:
                    renderer.clear()
                    self.fig.draw(renderer)   # animated artists are skipped, as in a full draw
                    self._scenes[key] = canvas.copy_from_bbox(self.fig.bbox)
        finally:
            self._prewarming = False
            self._set_view(shown)
            self.fig.stale_callback = stale_callback
            self.fig.stale = False
        canvas.restore_region(self._background)   # the picture of the shown view again

    def _draw_dynamic(self):
        for artist in self._dynamic:
            if artist.get_visible():
                artist.axes.draw_artist(artist)

    def _blit_region(self):
        """The part of the figure an update can change: the axes that hold the changed artists (the whole
        figure when one of them is drawn unclipped). A GUI canvas copies only this region to the screen;
        ipympl sends the browser the changed pixels whatever the region (see :mod:`odeteach.widgets.frames`)."""
        if any(not artist.get_clip_on() for artist in self._dynamic):
            return self.fig.bbox
        return Bbox.union([ax.bbox for ax in {artist.axes for artist in self._dynamic}])

    def _redraw(self):
        """Blit the changed artists when the background is still valid, else ask for a full redraw."""
        canvas = self.fig.canvas
        key = self._figure_key()
        if key != self._background_key and key in self._scenes:   # another view, rendered before
            self._background, self._background_key = self._scenes[key], key
        if self._dynamic and self._background is not None and key == self._background_key:
            canvas.restore_region(self._background)
            self._draw_dynamic()
            canvas.blit(self._blit_region())
            self.blits += 1
        else:
            self._background = None   # stale until the requested draw has happened
            canvas.draw_idle()

    def update(self):
        """Recompute for the controls' current values and redraw; never raises."""
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                note = self._update()
            self.message.value = "" if not note else note
        except Exception as exc:  # a learner must never see a traceback from a slider
            self.message.value = warning_html(f"{type(exc).__name__}: {exc}")
        self._redraw()
        self._refresh()
        self.last_update_s = time.perf_counter() - start

    def _update(self):  # pragma: no cover - abstract
        raise NotImplementedError
