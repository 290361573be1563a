"""Automatic checks for the lessons' exercises.

Every check takes the learner's answer (a function, a number, a tensor), tests it against
the package's own implementation on cases the learner has not seen, and returns a
:class:`CheckResult` that prints ✅ or ❌ with a hint, never the answer itself.
Each lesson's checks live in their own module (``odeteach.exercises.lesson01`` …).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CheckResult", "passed", "failed", "run_safely"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one exercise check. ``bool(result)`` is whether it passed."""

    exercise: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark = "✅ pass" if self.ok else "❌ not yet"
        return f"{mark} · {self.exercise}: {self.message}"

    def _repr_markdown_(self) -> str:
        mark = "✅ **pass**" if self.ok else "❌ **not yet**"
        return f"{mark} · *{self.exercise}*: {self.message}"

    __repr__ = __str__


def passed(exercise: str, message: str = "well done.") -> CheckResult:
    return CheckResult(exercise, True, message)


def failed(exercise: str, hint: str) -> CheckResult:
    """A failed check. The hint says where to look, not what the answer is."""
    return CheckResult(exercise, False, "Hint: " + hint)


def run_safely(exercise: str, fn, *args, **kwargs):
    """Call the learner's code; turn an exception into a failed check naming it (no traceback)."""
    try:
        return None, fn(*args, **kwargs)
    except Exception as exc:  # the learner's code may raise anything
        return failed(exercise, f"your code raised {type(exc).__name__}: {exc}. Run it on a small example first."), None
