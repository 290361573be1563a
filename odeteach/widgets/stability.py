"""Lesson 2's stability explorer: the regions |R(h·λ)| ≤ 1 and the test equation solved with step h.

Move h and λ, and watch the numerical solution of dy/dt = λ y grow when h·λ leaves the method's
region (the regions come from :func:`odeteach.stability.stability_region`, the verdict from
:func:`odeteach.stability.check_step`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import torch

from ..errors import SolverError
from ..integrate import solve
from ..stability import check_step, stability_region
from ..tableaux import TABLEAUX
from .base import ACCEPTED_COLOUR, EXACT_COLOUR, REJECTED_COLOUR, Explorer, style_axes, warning_html

__all__ = ["StabilityExplorer"]


class StabilityExplorer(Explorer):
    """Stability regions |R(h·λ)| ≤ 1 and the test equation dy/dt = λ y solved with step h.

    Controls: ``method`` (ToggleButtons), ``step_size`` (h), ``lam_re`` and ``lam_im`` (λ).
    Readouts: ``amplification`` (|R(h·λ)|) and ``message`` ("unstable at h·λ = …"). Left: the
    region of every method (outlines) with the selected one filled and h·λ marked. Right: |y_n|
    for ``n_steps`` steps of the selected method against the exact |e^{λt}|.
    """

    controls = ("method", "step_size", "lam_re", "lam_im")

    def __init__(self, methods=("euler", "midpoint", "rk4"), *, n_steps=40, h0=0.5, lam0=complex(-2.0, 0.0)):
        for m in methods:
            if m not in TABLEAUX or TABLEAUX[m].adaptive:
                raise ValueError(f"StabilityExplorer solves with a fixed step; {m!r} is adaptive.")
        if n_steps < 1:
            raise ValueError(f"n_steps must be positive; got {n_steps}.")
        self.n_steps = int(n_steps)
        self.method = widgets.ToggleButtons(options=list(methods), value=methods[0], description="method",
                                            style={"button_width": "80px"})
        self.step_size = widgets.FloatSlider(value=h0, min=0.05, max=3.0, step=0.05, description="step h")
        self.lam_re = widgets.FloatSlider(value=lam0.real, min=-4.0, max=1.0, step=0.1, description="Re λ")
        self.lam_im = widgets.FloatSlider(value=lam0.imag, min=0.0, max=4.0, step=0.1, description="Im λ")
        self.amplification = widgets.HTML()

        self.fig, (self.ax_region, self.ax_sol) = self._figure(1, 2, (9, 3.8))
        colors = dict(zip(methods, ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]))
        self.fills = {}
        for m in methods:
            X, Y, R = stability_region(m, re=(-5, 1.5), im=(-4, 4), n=201)
            self.ax_region.contour(X, Y, R, levels=[1.0], colors=[colors[m]], linewidths=1.2)
            fill = self.ax_region.contourf(X, Y, R, levels=[0, 1.0], colors=[colors[m]], alpha=0.25)
            fill.set_visible(False)
            self.fills[m] = fill
            self.ax_region.plot([], [], color=colors[m], label=m)
        self.ax_region.axhline(0, color="k", lw=0.5)
        self.ax_region.axvline(0, color="k", lw=0.5)
        (self.z_point,) = self.ax_region.plot([], [], "*", ms=14, color=REJECTED_COLOUR, zorder=5, label="h·λ")
        self.ax_region.set_xlabel("Re(h·λ)", fontsize=9)
        self.ax_region.set_ylabel("Im(h·λ)", fontsize=9)
        self.ax_region.set_aspect("equal")
        self.ax_region.legend(fontsize=7, loc="upper left")
        (self.exact_line,) = self.ax_sol.semilogy([], [], color=EXACT_COLOUR, lw=2, label="exact |exp(λt)|")
        (self.num_line,) = self.ax_sol.semilogy([], [], "o-", ms=3, lw=1, color=ACCEPTED_COLOUR, label="numerical |y_n|")
        self.ax_sol.set_ylim(1e-8, 1e8)
        # Against the step number n, so that the axis keeps its limits when h moves (t = n·h).
        self.ax_sol.set_xlim(0, self.n_steps)
        self.ax_sol.set_xlabel("step n  (t = n·h)", fontsize=9)
        self.ax_sol.legend(fontsize=7, loc="upper left")
        style_axes(self.ax_region)
        style_axes(self.ax_sol, log_y=True)
        self.fig.tight_layout()
        self._animate(*self.fills.values(), self.z_point, self.exact_line, self.num_line)
        self._finish([self.amplification])

    @property
    def lam(self) -> complex:
        return complex(self.lam_re.value, self.lam_im.value)

    def _update(self):
        method, h, lam = self.method.value, float(self.step_size.value), self.lam
        for m, fill in self.fills.items():
            fill.set_visible(m == method)
        z = h * lam
        self.z_point.set_data([z.real], [z.imag])
        check = check_step(method, h, lam)
        self.amplification.value = (f"{method}, {self.n_steps} steps of h = {h:.3g} (t = {self.n_steps * h:.3g}) · "
                                    f"|R(h·λ)| = <b>{check.amplification:.3g}</b>")
        # dy/dt = λ y for complex λ = a + ib, as a real 2-D system.
        a, b = lam.real, lam.imag
        M = torch.tensor([[a, -b], [b, a]], dtype=torch.float64)
        n = np.arange(self.n_steps + 1)
        t = torch.from_numpy(n * h)
        n_fine = np.linspace(0, self.n_steps, 200)
        self.exact_line.set_data(n_fine, np.clip(np.exp(a * h * n_fine), 1e-300, 1e300))
        try:
            sol = solve(lambda _t, y: y @ M.T, torch.tensor([1.0, 0.0], dtype=torch.float64), t, method=method,
                        options={"step_size": h})
        except SolverError as exc:
            self.num_line.set_data([], [])
            return warning_html(f"{check.message}. {exc}")
        norms = sol.ys.norm(dim=1).numpy()
        self.num_line.set_data(n, np.clip(norms, 1e-300, 1e300))
        if check.stable:
            return html.escape(check.message)
        return warning_html(check.message)
