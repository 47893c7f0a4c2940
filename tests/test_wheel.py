"""fairaug installed from a wheel, not the checkout (slow tier): the configs travel with it."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import TINY_PHANTOM, TINY_RUN

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment that sees this machine's packages (torch, ...) but imports
    fairaug from the wheel built from the repo; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(REPO / "fairaug", source / "fairaug", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(root / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (root / "dist").glob("fairaug-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("fairaug/conf/") and n.endswith(".yaml")}
    expected = {str(p.relative_to(REPO)) for p in (REPO / "fairaug" / "conf").rglob("*.yaml")}
    assert shipped == expected and not any(n.startswith("tests/") for n in names)
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(root / "venv")], check=True, timeout=600
    )
    bin_dir = root / "venv" / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return bin_dir


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "fairaug"), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_installed_command_runs_outside_the_checkout(installed, tmp_path, fairaug_home):
    where = subprocess.run(
        [str(installed / "python"), "-c", "import fairaug; print(fairaug.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(installed.parent) in where  # the wheel's copy, not the editable checkout
    assert "Tasks (task=...)" in run(installed, "--help", cwd=tmp_path).stdout
    job = run(installed, "task=cohort", "experiment=real_only", "--cfg", "job", cwd=tmp_path)
    assert job.returncode == 0 and "name: cohort" in job.stdout, job.stderr[-2000:]
    result = run(
        installed,
        "task=classify",
        "input=edes",
        *TINY_PHANTOM,
        *TINY_RUN,
        f"paths.home={fairaug_home}",
        f"paths.output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 0 <= json.loads((tmp_path / "run" / "metrics.json").read_text())["balanced_accuracy"] <= 1
