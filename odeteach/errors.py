"""The one exception a learner sees from the solvers."""

__all__ = ["SolverError"]


class SolverError(ValueError):
    """A solve cannot go on: bad input, or a problem that arose mid-solve.

    Every message says what was wrong and what to do about it. It subclasses
    :class:`ValueError`, so ``except ValueError`` catches bad input as usual.
    """
