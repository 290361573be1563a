"""Explicit Runge–Kutta methods as data: Butcher tableaux with their textbook names.

A method is its tableau

    c | A
    --+----
      | b          (the weights of the solution that is propagated)
      | b_err      (b - b_hat: weights of the local error estimate; adaptive methods only)

and the stepping code (:func:`odeteach.integrate.rk_step`) is written once for all of them.
Adding a method means adding a table here.

References
----------
E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*,
2nd ed., Springer 1993, §II.1 (classical methods), §II.4 and §II.5 (embedded pairs,
Dormand–Prince 5(4), dense output).
P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge–Kutta formulas",
Appl. Math. Lett. 2 (1989) 321–325.
L. F. Shampine, "Some practical Runge–Kutta formulas", Math. Comp. 46 (1986) 135–150
(the dense-output coefficients of Dormand–Prince 5(4) used below).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction as F

__all__ = ["Tableau", "EULER", "MIDPOINT", "HEUN", "RK4", "BOSH3", "DOPRI5", "TABLEAUX", "METHODS"]

# Coefficients are checked to this tolerance; the tables are written as exact fractions,
# so anything larger than rounding error is a typo.
_CHECK_TOL = 1e-12


@dataclass(frozen=True)
class Tableau:
    """The Butcher tableau of an explicit Runge–Kutta method.

    Parameters
    ----------
    name : the method's name, as accepted by ``odeint(..., method=name)``.
    c : stage times as fractions of the step, ``c[0] == 0``.
    A : the strictly lower-triangular stage matrix; ``A[i]`` has ``i`` entries.
    b : weights of the propagated solution.
    order : the order of the propagated solution.
    b_err : ``b - b_hat``, weights of the embedded error estimate (``None`` for fixed-step methods).
    error_order : order of the embedded (lower-order) solution ``b_hat``.
    fsal : "first same as last": the last stage is ``f(t + h, y_new)``, reused as the next step's
        first stage, so an accepted step costs one evaluation fewer.
    dense : for methods with their own continuous extension, ``dense[i]`` are the coefficients of
        ``θ, θ², θ³, …`` in the weight of stage ``i``: ``y(t + θh) = y + h Σ_i k_i Σ_p dense[i][p] θ^(p+1)``.
    """

    name: str
    c: tuple[float, ...]
    A: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    b_err: tuple[float, ...] | None = None
    error_order: int | None = None
    fsal: bool = False
    dense: tuple[tuple[float, ...], ...] | None = None
    # Derived: for each stage i, the (j, A[i][j]) with A[i][j] != 0, so a step skips zero work.
    stage_terms: tuple[tuple[tuple[int, float], ...], ...] = field(init=False, repr=False, compare=False)
    b_terms: tuple[tuple[int, float], ...] = field(init=False, repr=False, compare=False)
    err_terms: tuple[tuple[int, float], ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        s = len(self.c)
        problems = []
        if s == 0:
            problems.append("it has no stages")
        if len(self.A) != s:
            problems.append(f"A has {len(self.A)} rows but c has {s} entries")
        if len(self.b) != s:
            problems.append(f"b has {len(self.b)} entries but there are {s} stages")
        if self.c and self.c[0] != 0:
            problems.append(f"c[0] is {self.c[0]}, but an explicit method's first stage is at c[0] = 0")
        for i, row in enumerate(self.A):
            if len(row) != i:
                problems.append(f"row {i} of A has {len(row)} entries; an explicit method needs {i}")
            elif i < s and abs(sum(row) - self.c[i]) > _CHECK_TOL:
                problems.append(f"row {i} of A sums to {sum(row)!r}, not c[{i}] = {self.c[i]!r}")
        if abs(sum(self.b) - 1) > _CHECK_TOL:
            problems.append(f"b sums to {sum(self.b)!r}, not 1")
        if self.b_err is not None:
            if len(self.b_err) != s:
                problems.append(f"b_err has {len(self.b_err)} entries but there are {s} stages")
            if abs(sum(self.b_err)) > _CHECK_TOL:
                problems.append(f"b_err sums to {sum(self.b_err)!r}, not 0")
            if self.error_order is None:
                problems.append("an adaptive method needs error_order (the order of the embedded solution)")
        if self.fsal and (self.c[-1] != 1 or tuple(self.A[-1]) != tuple(self.b[:-1]) or self.b[-1] != 0):
            problems.append("fsal=True needs the last stage to be f(t + h, y_new): c[-1] = 1, A[-1] = b[:-1], b[-1] = 0")
        if self.dense is not None:
            if len(self.dense) != s:
                problems.append(f"dense has {len(self.dense)} rows but there are {s} stages")
            else:
                # At θ = 1 the continuous extension must give back the step's own solution.
                for i, (coeffs, bi) in enumerate(zip(self.dense, self.b)):
                    if abs(sum(coeffs) - bi) > _CHECK_TOL:
                        problems.append(f"dense row {i} sums to {sum(coeffs)!r}, not b[{i}] = {bi!r}")
        if problems:
            raise ValueError(f"Butcher tableau {self.name!r} is inconsistent: " + "; ".join(problems) + ".")

        object.__setattr__(self, "stage_terms", tuple(
            tuple((j, a) for j, a in enumerate(row) if a != 0) for row in self.A))
        object.__setattr__(self, "b_terms", tuple((j, w) for j, w in enumerate(self.b) if w != 0))
        object.__setattr__(self, "err_terms", None if self.b_err is None else tuple(
            (j, w) for j, w in enumerate(self.b_err) if w != 0))

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_err is not None

    @property
    def evaluations_per_step(self) -> int:
        """Function evaluations an accepted step costs once the solver is running."""
        return self.stages - 1 if self.fsal else self.stages

    def __str__(self) -> str:
        """The tableau as a table, for printing in a lesson."""
        width = 9
        fmt = lambda x: f"{x:{width}.4g}"  # noqa: E731
        lines = []
        for ci, row in zip(self.c, self.A):
            lines.append(fmt(ci) + " |" + "".join(fmt(a) for a in row))
        rule = "-" * (width + 1) + "+" + "-" * (width * self.stages)
        lines.append(rule)
        lines.append(" " * width + " |" + "".join(fmt(w) for w in self.b) + "   b")
        if self.b_err is not None:
            lines.append(" " * width + " |" + "".join(fmt(w) for w in self.b_err) + "   b_err")
        return f"{self.name} (order {self.order})\n" + "\n".join(lines)


def _floats(*xs) -> tuple[float, ...]:
    return tuple(float(x) for x in xs)


def _rows(*rows) -> tuple[tuple[float, ...], ...]:
    return tuple(_floats(*row) for row in rows)


def _minus(b, b_hat) -> tuple[float, ...]:
    return tuple(float(F(x) - F(y)) for x, y in zip(b, b_hat))


EULER = Tableau(name="euler", c=_floats(0), A=_rows(()), b=_floats(1), order=1)

MIDPOINT = Tableau(name="midpoint", c=_floats(0, F(1, 2)), A=_rows((), (F(1, 2),)), b=_floats(0, 1), order=2)

# Heun's method (the explicit trapezoidal rule).
HEUN = Tableau(name="heun", c=_floats(0, 1), A=_rows((), (1,)), b=_floats(F(1, 2), F(1, 2)), order=2)

# The classical fourth-order method of Kutta (1901).
RK4 = Tableau(
    name="rk4",
    c=_floats(0, F(1, 2), F(1, 2), 1),
    A=_rows((), (F(1, 2),), (0, F(1, 2)), (0, 0, 1)),
    b=_floats(F(1, 6), F(1, 3), F(1, 3), F(1, 6)),
    order=4,
)

# Bogacki–Shampine 3(2), FSAL.
_BOSH3_B = (F(2, 9), F(1, 3), F(4, 9), 0)
_BOSH3_B_HAT = (F(7, 24), F(1, 4), F(1, 3), F(1, 8))
BOSH3 = Tableau(
    name="bosh3",
    c=_floats(0, F(1, 2), F(3, 4), 1),
    A=_rows((), (F(1, 2),), (0, F(3, 4)), _BOSH3_B[:3]),
    b=_floats(*_BOSH3_B),
    order=3,
    b_err=_minus(_BOSH3_B, _BOSH3_B_HAT),
    error_order=2,
    fsal=True,
)

# Dormand–Prince 5(4), FSAL (HNW I, Table II.5.2), with Shampine's (1986) order-4 dense output.
_DOPRI5_B = (F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), 0)
_DOPRI5_B_HAT = (F(5179, 57600), 0, F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100), F(1, 40))
DOPRI5 = Tableau(
    name="dopri5",
    c=_floats(0, F(1, 5), F(3, 10), F(4, 5), F(8, 9), 1, 1),
    A=_rows(
        (),
        (F(1, 5),),
        (F(3, 40), F(9, 40)),
        (F(44, 45), F(-56, 15), F(32, 9)),
        (F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)),
        (F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)),
        _DOPRI5_B[:6],
    ),
    b=_floats(*_DOPRI5_B),
    order=5,
    b_err=_minus(_DOPRI5_B, _DOPRI5_B_HAT),
    error_order=4,
    fsal=True,
    dense=_rows(
        (1, F(-8048581381, 2820520608), F(8663915743, 2820520608), F(-12715105075, 11282082432)),
        (0, 0, 0, 0),
        (0, F(131558114200, 32700410799), F(-68118460800, 10900136933), F(87487479700, 32700410799)),
        (0, F(-1754552775, 470086768), F(14199869525, 1410260304), F(-10690763975, 1880347072)),
        (0, F(127303824393, 49829197408), F(-318862633887, 49829197408), F(701980252875, 199316789632)),
        (0, F(-282668133, 205662961), F(2019193451, 616988883), F(-1453857185, 822651844)),
        (0, F(40617522, 29380423), F(-110615467, 29380423), F(69997945, 29380423)),
    ),
)

TABLEAUX: dict[str, Tableau] = {tab.name: tab for tab in (EULER, MIDPOINT, HEUN, RK4, BOSH3, DOPRI5)}
METHODS: tuple[str, ...] = tuple(TABLEAUX)

