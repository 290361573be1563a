"""Fast mode: the one place that reads ``ODETEACH_FAST``.

The test command sets ``ODETEACH_FAST=1`` so that every notebook runs under nbval in
seconds; a student's run (variable unset) is the full lesson. Lessons ask
``pick(full=..., fast=...)`` for iteration counts, data sizes and sweep lengths.
"""

import os

__all__ = ["FAST", "pick"]

FAST: bool = os.environ.get("ODETEACH_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, fast):
    """``fast`` under the test command's fast mode, ``full`` otherwise."""
    return fast if FAST else full
