"""Lesson 7's explorer: state your constraints, get the cheapest solver setting that meets them.

:class:`TuningExplorer` draws every measured setting of a trained ODE-Net (:func:`odeteach.tuning.measure_settings`)
on the accuracy–cost plane with its Pareto front (:func:`odeteach.tuning.pareto_front`). Three sliders set the
constraints (minimum accuracy, maximum ms per image, maximum NFE); the region that meets the constraint on the
x axis and the accuracy floor is shaded, a point that misses the third constraint is greyed, and the setting
:func:`odeteach.tuning.choose` picks is ringed and named. Nothing is measured here: a move runs ``choose`` over
the measured points and moves artists (blitted).
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator

from ..tuning import Measurement, choose, describe, pareto_front
from ..validation import positive_number
from .base import ACCEPTED_COLOUR, ADJOINT_COLOUR, REJECTED_COLOUR, Explorer, slider_values, style_axes

__all__ = ["TuningExplorer"]

SET_COLOURS = (ACCEPTED_COLOUR, ADJOINT_COLOUR, "tab:purple", "tab:orange")
GREYED = "0.72"            # a point that misses the constraint the plane does not show
FEASIBLE_COLOUR = "#2ca02c"
INACTIVE_ALPHA = 0.3       # the sets the constraints do not choose from
FAMILIES = {"fixed": ("o", "fixed step (euler, midpoint, rk4)"), "adaptive": ("^", "adaptive (bosh3, dopri5)")}
COST_LABELS = {"nfe": "NFE per forward pass", "ms": "ms per image (measured)"}
LOG_RATIO = 10             # a log x axis when the costs span more than this factor
ACCURACY_SPAN = 10.0       # the default accuracy axis shows at most this many percentage points
MS_STEP = 0.05             # the ms slider's step, in decades (20 positions per decade)


def _checked_set(points, name: str) -> list:
    if isinstance(points, Measurement) or not isinstance(points, (list, tuple)):
        raise TypeError(f"{name!r}: give a list of tuning.Measurement (from odeteach.tuning.measure_settings); "
                        f"got {type(points).__name__}.")
    if not points:
        raise ValueError(f"{name!r} has no measured settings: measure some with odeteach.tuning.measure_settings.")
    for i, p in enumerate(points):
        if not isinstance(p, Measurement):
            raise TypeError(f"{name!r}[{i}] is a {type(p).__name__}, not a tuning.Measurement "
                            "(from odeteach.tuning.measure_settings).")
    usable = [p for p in points if p.error is None]
    if not usable:
        raise ValueError(f"every setting of {name!r} failed to solve: there is nothing to draw or choose from.")
    if len({p.batch_size for p in points}) > 1:
        raise ValueError(f"{name!r} mixes batch sizes {sorted({p.batch_size for p in points})}: measure one model's "
                         "settings on one batch, so that ms per image and ms per batch agree.")
    bad = [p.label for p in usable if not (p.nfe >= 1 and math.isfinite(p.ms_per_batch) and p.ms_per_batch > 0)]
    if bad:
        raise ValueError(f"{name!r}: {', '.join(bad)} has no positive NFE and finite time, yet no error: "
                         "a measured setting needs both (a failed one, an error).")
    return list(points)


def _checked_range(accuracy_range) -> tuple[float, float]:
    try:
        lo, hi = map(float, accuracy_range)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"accuracy_range must be (lowest, highest) percent with 0 ≤ lowest < highest ≤ 100, "
                         f"e.g. (90, 100); got {accuracy_range!r}.")
    return lo, hi


def _accuracy_range(usable) -> tuple[float, float]:
    """Whole percents around the measured accuracies, at most ACCURACY_SPAN points below the top."""
    accuracies = [100 * p.accuracy for p in usable]
    hi = min(100.0, math.ceil(max(accuracies) + 0.5))
    return max(math.floor(min(accuracies) - 0.5), hi - ACCURACY_SPAN, 0.0), hi


def _x(p, cost: str) -> float:
    return float(p.nfe) if cost == "nfe" else p.ms_per_image


class TuningExplorer(Explorer):
    """Every solver setting of one ODE-Net on the accuracy–cost plane, and the cheapest one that meets the constraints.

    Parameters
    ----------
    points : the model's settings, measured (a list of :class:`odeteach.tuning.Measurement`); failed ones are
        left off the plane and never chosen.
    others : optional ``{name: [Measurement, …]}``, other models measured the same way (e.g. a regularised
        ODE-Net), drawn in their own colour with their own front; then a ``model`` toggle says which set
        the constraints choose from.
    name : the name of ``points``' model.
    accuracy_range : the ``min_accuracy`` slider's ends and the plane's accuracy axis, in percent (lowest,
        highest); settings below it lie under the plane. Default: the measured accuracies in whole percent,
        at most ``ACCURACY_SPAN`` points below the top, so that the settings worth choosing are not squeezed
        against 100% by a one-step Euler far below.
    min_accuracy : the slider's first value, in percent.

    Controls: ``model`` (only with ``others``), ``cost`` ("nfe" or "ms": the x axis and what "cheapest"
    means), ``min_accuracy`` (%), ``max_ms`` (ms per image; its top is no limit) and ``max_nfe`` (its top is
    no limit). Readout: ``readout``. ``choice`` is the last :class:`odeteach.tuning.Choice`; ``region`` the
    shaded Rectangle.
    """

    def __init__(self, points, *, others: dict | None = None, name: str = "ODE-Net",
                 accuracy_range=None, min_accuracy: float = 97.0):
        if others is not None and not isinstance(others, dict):
            raise TypeError(f"others must be a dict {{name: [Measurement, …]}}; got {type(others).__name__}.")
        if name in (others or {}):
            raise ValueError(f"others may not reuse the name {name!r} of the main set; name it differently.")
        self.sets = {name: _checked_set(points, name),
                     **{str(k): _checked_set(v, str(k)) for k, v in (others or {}).items()}}
        usable = [p for pts in self.sets.values() for p in pts if p.error is None]
        lo, hi = _accuracy_range(usable) if accuracy_range is None else _checked_range(accuracy_range)
        self.main = name
        self.batch_sizes = {k: pts[0].batch_size for k, pts in self.sets.items()}
        self.fronts = {(k, c): pareto_front(pts, cost=c) for k, pts in self.sets.items() for c in COST_LABELS}

        self.model = widgets.ToggleButtons(options=list(self.sets), description="choose from") if others else None
        self.cost = widgets.ToggleButtons(options=[("NFE", "nfe"), ("ms per image", "ms")], description="cost")
        start = min(max(positive_number("min_accuracy", min_accuracy, allow_zero=True), lo), hi)
        self.min_accuracy = widgets.FloatSlider(value=start, min=lo, max=hi, step=0.1, description="min accuracy %",
                                                readout_format=".1f")
        ms = [p.ms_per_image for p in usable]
        ms_lo = math.floor(math.log10(min(ms)) * 10) / 10
        ms_hi = max(math.ceil(math.log10(max(ms)) * 10) / 10, ms_lo + 0.1)
        self.max_ms = widgets.FloatLogSlider(value=10 ** ms_hi, base=10, min=ms_lo, max=ms_hi, step=MS_STEP,
                                             description="max ms/image", readout_format=".3g")
        self.max_nfe = widgets.IntSlider(value=max(p.nfe for p in usable), min=1, max=max(p.nfe for p in usable),
                                         description="max NFE")
        for slider in (self.min_accuracy, self.max_ms, self.max_nfe):
            slider.style = {"description_width": "100px"}
        self._ms_top = slider_values(self.max_ms)[-1]
        self.controls = (("model",) if others else ()) + ("cost", "min_accuracy", "max_ms", "max_nfe")
        self.readout = widgets.HTML()
        self._draw_plane(usable, lo, hi)
        self._finish([self.readout])

    # ------------------------------------------------------------------ the figure, made once
    def _draw_plane(self, usable, lo, hi):
        self.fig, self.ax = self._figure(1, 1, (7.4, 3.4))
        ax = self.ax
        ax.set_ylim(lo - 0.4, hi + 0.4)
        ax.set_ylabel("test accuracy (%)", fontsize=9)
        ax.grid(alpha=0.3)
        self.limits = {}
        for cost in COST_LABELS:
            xs = [_x(p, cost) for p in usable]
            log = max(xs) / min(xs) > LOG_RATIO
            self.limits[cost] = (log, (min(xs) / 1.4, max(xs) * 1.4) if log else (0.0, max(xs) * 1.08))
        self._plane_cost = None
        self._set_plane("nfe")
        self.region = Rectangle((0, 0), 0, 0, facecolor=FEASIBLE_COLOUR, alpha=0.13, edgecolor=FEASIBLE_COLOUR, lw=1)
        ax.add_patch(self.region)
        self.front_lines, self.dots = {}, {}
        for k, colour in zip(self.sets, SET_COLOURS):
            self.front_lines[k], = ax.plot([], [], drawstyle="steps-post", color=colour, lw=1.3)
            for family, (marker, _) in FAMILIES.items():
                members = [p for p in self.sets[k] if p.error is None and (p.setting.tol is None) == (family == "fixed")]
                self.dots[(k, family)] = (members, ax.scatter(np.zeros(len(members)), np.zeros(len(members)), s=22,
                                                              marker=marker, linewidths=0, zorder=3))
        self.chosen_marker, = ax.plot([], [], "o", ms=13, mfc="none", mec="k", mew=1.8, zorder=4)
        below = sum(100 * p.accuracy < lo for p in usable)
        if below:
            ax.text(0.01, 0.02, f"{below} setting{'s' if below > 1 else ''} below {lo:g}% lie under the plane",
                    transform=ax.transAxes, fontsize=7, color="0.4")
        handles = [Line2D([], [], color=c, lw=1.3, label=f"{k} (front)") for k, c in zip(self.sets, SET_COLOURS)]
        handles += [Line2D([], [], ls="", marker=m, color="0.3", label=label) for m, label in FAMILIES.values()]
        handles += [Patch(facecolor=FEASIBLE_COLOUR, alpha=0.25, label="meets the constraints"),
                    Line2D([], [], ls="", marker="o", color=GREYED, label="misses the limit not on the x axis"),
                    Line2D([], [], ls="", marker="o", ms=10, mfc="none", mec="k", label="chosen (red: closest)")]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        self.fig.tight_layout()
        # In drawing order, so that a blit layers them as a full draw does.
        self._animate(self.region, *self.front_lines.values(), *(c for _, c in self.dots.values()), self.chosen_marker)

    def _set_plane(self, cost: str):
        """The x axis of ``cost``: its scale, limits and label (the y axis never changes)."""
        if cost == self._plane_cost:
            return
        log, xlim = self.limits[cost]
        self.ax.set_xscale("log" if log else "linear")
        style_axes(self.ax, log_x=log)
        if log:   # 1, 2, 5, 10 … written as numbers: a student reads "NFE 20", not "2×10¹"
            self.ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
            self.ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        self.ax.set_autoscale_on(False)
        self.ax.set_xlim(xlim)
        self.ax.set_xlabel(COST_LABELS[cost], fontsize=9)
        self._plane_cost = cost

    # ------------------------------------------------------------------ one background per cost
    # The x axis changes with the cost (log or linear, its own limits): each cost is a view (Explorer._views),
    # so that switching the cost blits instead of laying out every tick label again.
    def _views(self):
        return tuple(COST_LABELS)

    def _view(self):
        return self._plane_cost

    def _set_view(self, cost):
        self._set_plane(cost)

    # ------------------------------------------------------------------ a move
    @property
    def active(self) -> str:
        """The name of the set the constraints choose from."""
        return self.main if self.model is None else self.model.value

    def _ms_per_image(self) -> float | None:
        """The max_ms slider in ms per image; None at its top (no limit)."""
        return None if self.max_ms.value >= self._ms_top * (1 - 1e-9) else float(self.max_ms.value)

    def constraints(self, name: str | None = None) -> dict:
        """The sliders as :func:`odeteach.tuning.choose`'s keywords for the set ``name`` (default: the active one).
        ``max_ms`` is per batch there: the slider's ms per image times that set's batch size. None: no limit."""
        ms = self._ms_per_image()
        return dict(min_accuracy=self.min_accuracy.value / 100,
                    max_ms=None if ms is None else ms * self.batch_sizes[name or self.active],
                    max_nfe=None if self.max_nfe.value >= self.max_nfe.max else int(self.max_nfe.value))

    def _update(self):
        cost, active = self.cost.value, self.active
        self._set_plane(cost)
        limits = self.constraints()
        self.choice = choose(self.sets[active], **limits, cost=cost)
        (x0, x1), y1 = self.ax.get_xlim(), self.ax.get_ylim()[1]
        x_limit = limits["max_nfe"] if cost == "nfe" else self._ms_per_image()
        right = x1 if x_limit is None else min(x_limit, x1)
        y0 = 100 * limits["min_accuracy"]
        self.region.set_bounds(x0, y0, max(right - x0, 0.0), y1 - y0)
        for i, (k, line) in enumerate(self.front_lines.items()):
            front, alpha = self.fronts[(k, cost)], 1.0 if k == active else INACTIVE_ALPHA
            line.set_data([_x(p, cost) for p in front] + [x1], [100 * p.accuracy for p in front] + [100 * front[-1].accuracy])
            line.set_alpha(alpha)
            # The constraint the x axis does not show greys the points that miss it (choose's own comparison).
            hidden = "max_ms" if cost == "nfe" else "max_nfe"
            limit = self.constraints(k)[hidden]
            for members, dots in (self.dots[(k, family)] for family in FAMILIES):
                misses = [limit is not None and (p.ms_per_batch if hidden == "max_ms" else p.nfe) > limit for p in members]
                dots.set_offsets(np.column_stack([[_x(p, cost) for p in members], [100 * p.accuracy for p in members]])
                                 if members else np.empty((0, 2)))
                dots.set_facecolors([to_rgba(GREYED if miss else SET_COLOURS[i], alpha) for miss in misses])
        shown = self.choice.chosen or self.choice.closest
        self.chosen_marker.set_data(([_x(shown, cost)], [100 * shown.accuracy]) if shown else ([], []))
        self.chosen_marker.set_markeredgecolor("k" if self.choice.chosen else REJECTED_COLOUR)
        if self.choice.chosen is not None:
            self.readout.value = (f"{html.escape(active)}, cheapest by {self.cost.label}: "
                                  f"<b>{html.escape(describe(self.choice.chosen))}</b>")
        else:
            self.readout.value = html.escape(self.choice.why)
