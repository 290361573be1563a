"""The committed notebooks are what a student sees on GitHub: clean outputs of one top-to-bottom run."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").rglob("*.ipynb"))
NOTEBOOKS = [p for p in NOTEBOOKS if ".ipynb_checkpoints" not in p.parts]


def _text(output):
    data = output.get("data", {})
    return "".join(output.get("text", "")) + "".join(data.get("text/plain", ""))


def test_notebooks_are_found():
    assert len([p for p in NOTEBOOKS if p.parent.name == "notebooks"]) >= 6
    assert len([p for p in NOTEBOOKS if p.parent.name == "solutions"]) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_one_clean_top_to_bottom_run(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in cells if "".join(c["source"]).strip()]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts} are not 1, 2, 3, …: re-run the notebook top to bottom before committing")
    outputs = [o for c in cells for o in c["outputs"]]
    errors = [o.get("ename") for o in outputs if o["output_type"] == "error"]
    assert not errors, f"{path.name} was committed with error outputs: {errors}"
    frozen = [_text(o)[:80] for o in outputs if " 0%|" in _text(o)]
    assert not frozen, f"{path.name} shows progress bars frozen at 0%: {frozen}"
    stderr = [_text(o)[:120] for o in outputs if o.get("name") == "stderr" and "Traceback" in _text(o)]
    assert not stderr, f"{path.name} has a traceback in its stderr output: {stderr}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent.name == "notebooks"], ids=lambda p: p.name)
def test_every_widget_output_carries_a_static_picture(path):
    """GitHub and nbviewer cannot draw widgets: each widget output also holds an image/png they show instead."""
    outputs = [o for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    bare = [_text(o)[:60] for o in views if "image/png" not in o["data"]]
    assert views, f"{path.name} shows no widget at all"
    assert not bare, f"{path.name}: widget outputs with no static image (use odeteach.widgets.base.show): {bare}"
