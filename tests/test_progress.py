"""The progress bars: a text bar with an ETA whose saved notebook output is its final state."""

import io

import odeteach.progress as progress_module
from odeteach.progress import progress


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, data, raw=False):
        self.shown.append(data["text/plain"])


def test_outside_a_kernel_it_is_a_plain_tqdm_bar_with_an_eta():
    out = io.StringIO()
    total = 0
    for i in progress(range(5), desc="train", file=out, mininterval=0):
        total += i
    assert total == 10
    text = out.getvalue()
    assert "train: 100%" in text and "5/5" in text and "<" in text   # elapsed<remaining: the ETA


def test_disabled_bar_iterates_and_prints_nothing():
    out = io.StringIO()
    bar = progress(range(3), desc="quiet", enabled=False, file=out)
    assert list(bar) == [0, 1, 2]
    bar.set_postfix(loss=1.0)
    assert out.getvalue() == ""


def test_in_a_kernel_one_display_is_updated_and_ends_at_100_percent(monkeypatch):
    shown = []

    def fake_display(data, raw=False, display_id=False):
        assert raw and display_id
        shown.append(data["text/plain"])
        return FakeHandle(shown)

    import IPython.display
    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(progress_module, "_in_kernel", lambda: True)
    for _ in progress(range(4), desc="fit", mininterval=0):
        pass
    assert shown[0].startswith("fit:   0%")
    assert shown[-1].startswith("fit: 100%") and "4/4" in shown[-1]
    assert all("\r" not in line and "\n" not in line for line in shown)
    assert "█" in shown[-1]       # unicode blocks, not '#': the display declares utf-8
