"""The set-up files agree: conda/Binder users get the same environment as pip users, and CI
runs exactly the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirement_map(lines):
    out = {}
    for line in lines:
        if line.startswith("-"):  # pip flags such as "-e ." install the course itself
            continue
        name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]
        out[name.lower().replace("_", "-")] = line.replace(" ", "")
    return out


def test_environment_yml_and_pyproject_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _requirement_map(conda_pip) == _requirement_map(pip_lines)
    assert "-e ." in conda_pip  # Binder installs the course package itself too


def test_torch_is_pinned_to_the_cpu_build_on_disk():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_ci_runs_the_readme_test_command_and_only_that():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "make test"
    assert all(line.startswith(("set ", "cd ")) for line in ci[:-1])
    assert "make test" in (ROOT / "README.md").read_text()
