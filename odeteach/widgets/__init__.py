"""Interactive explorers for the lessons: one small class per idea.

Each explorer builds its ipywidgets controls and one matplotlib figure once; the controls are
attributes (``explorer.step_size``, ``explorer.method`` …) and moving one updates the figure's
artists in place. ``explorer.widget`` is what a notebook displays. Tests drive the controls by
setting ``explorer.<control>.value`` and read the new state back.
"""

from .tuning import TuningExplorer  # lesson 7

__all__ = ["TuningExplorer"]
