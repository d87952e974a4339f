"""``hf:`` Hub ids, resolved offline from a local Hugging Face cache built from the embedded model's folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from langgraph_stl.models import embedded_hf_folder, load_chat_model
from langgraph_stl.models.hub import HubModelNotFoundError, resolve_hf_model
from langgraph_stl.training.sft import UnknownBaseError, resolve_base
from tests.conftest import REPO

REPO_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache in the Hub's layout: models--org--name/{refs/main, snapshots/<rev>/...} (files link to the folder)."""
    cache = tmp_path_factory.mktemp("hf-hub-cache")
    storage = cache / ("models--" + REPO_ID.replace("/", "--"))
    snapshot = storage / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    for file in embedded_hf_folder().iterdir():
        (snapshot / file.name).symlink_to(file)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(REVISION)
    return cache


@pytest.fixture
def offline(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    yield hub_cache


pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_hub_id_resolves_to_the_cached_snapshot_offline(offline: Path) -> None:
    resolved = resolve_hf_model(REPO_ID)
    assert resolved.folder == offline / f"models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/{REVISION}"
    assert (resolved.repo_id, resolved.name) == (REPO_ID, REPO_ID)
    assert resolve_hf_model(f"{REPO_ID}@{REVISION}").folder == resolved.folder


def test_hub_model_serves_like_the_folder(offline: Path) -> None:
    by_id = load_chat_model(f"hf:{REPO_ID}", temperature=0, max_tokens=6)
    by_folder = load_chat_model(f"hf:{embedded_hf_folder()}", temperature=0, max_tokens=6)
    reply = by_id.invoke("Name a color.")
    assert reply.content == by_folder.invoke("Name a color.").content
    assert reply.response_metadata["model_name"] == REPO_ID


def test_hub_id_is_a_training_base(offline: Path) -> None:
    base = resolve_base(f"hf:{REPO_ID}")
    assert base.folder == resolve_hf_model(REPO_ID).folder  # trains from the cached snapshot
    assert base.name == base.hub_id == REPO_ID  # what the adapter records as base_model_name_or_path


def test_missing_hub_model_offline_is_one_line(offline: Path) -> None:
    with pytest.raises(HubModelNotFoundError) as info:
        resolve_hf_model("nobody/no-such-model")
    message = str(info.value)
    assert "\n" not in message
    assert "nobody/no-such-model" in message and "HF_HUB_OFFLINE=1" in message
    with pytest.raises(UnknownBaseError, match="nobody/no-such-model"):
        resolve_base("hf:nobody/no-such-model")


def test_neither_folder_nor_hub_id(tmp_path: Path) -> None:
    with pytest.raises(HubModelNotFoundError, match=r"no such folder .* and not a Hub id"):
        resolve_hf_model(str(tmp_path / "a" / "b"))


def test_cli_train_names_the_missing_hub_base(hub_cache: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    data = tmp_path / "data.jsonl"
    data.write_text("")
    args = ["train", "--base", "hf:nobody/no-such-model", "--data", str(data), "--out", str(tmp_path / "out")]
    res = subprocess.run(
        [sys.executable, "-m", "langgraph_stl", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert res.returncode != 0
    assert "nobody/no-such-model" in res.stdout + res.stderr and "HF_HUB_OFFLINE=1" in res.stdout + res.stderr
