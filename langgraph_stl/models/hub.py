"""``hf:`` references: a local folder or a Hugging Face Hub model id, resolved to a local folder.

A Hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``, optionally ``@revision``) goes through ``snapshot_download``:
online it downloads what is missing into the Hugging Face cache (``HF_HUB_CACHE``); offline (``HF_HUB_OFFLINE=1``)
it finds the cached snapshot through ``refs/<revision>``. Everything downstream (transformers, PEFT, TRL) then
reads a plain folder, and :attr:`HFModel.repo_id` keeps the id for names and adapter metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HFModel", "HubModelNotFoundError", "resolve_hf_model"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


class HubModelNotFoundError(FileNotFoundError):
    """An ``hf:`` reference is neither a local folder nor a Hub model that can be had (cached, or downloadable)."""


@dataclass(frozen=True)
class HFModel:
    """A resolved ``hf:`` reference: the local ``folder`` and, for Hub models, the ``repo_id`` and ``revision``."""

    folder: Path
    repo_id: str | None = None
    revision: str | None = None

    @property
    def name(self) -> str:
        """The Hub id when there is one, else the folder name."""
        return self.repo_id or self.folder.name


def is_repo_id(ref: str) -> bool:
    """Whether ``ref`` has the shape of a Hub model id (``name`` or ``org/name``, no path syntax)."""
    return bool(_REPO_ID.match(ref.partition("@")[0])) and not ref.startswith((".", "~"))


def resolve_hf_model(ref: str) -> HFModel:
    """The local folder for ``ref`` (an existing folder, else a Hub id ``org/name[@revision]``).

    Raises :class:`HubModelNotFoundError` with one line naming the repo id and, offline, the setting that forbids
    the download; a reference that is neither a folder nor an id says so.
    """
    path = Path(ref).expanduser()
    if path.exists():
        return HFModel(path.resolve())
    if not is_repo_id(ref):
        raise HubModelNotFoundError(f"hf:{ref}: no such folder ({path.resolve()}) and not a Hub id (org/name)")
    repo_id, _, revision = ref.partition("@")
    return HFModel(Path(_snapshot(repo_id, revision or None)), repo_id, revision or None)


def _snapshot(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        # offline, go straight to the cache (a commit-hash revision would otherwise still try to list the repo)
        folder: str = snapshot_download(repo_id, revision=revision, local_files_only=constants.is_offline_mode())
    except LocalEntryNotFoundError as exc:
        cache = constants.HF_HUB_CACHE
        if constants.is_offline_mode():
            raise HubModelNotFoundError(
                f"hf:{where} is not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE=1 forbids "
                f"downloading it: unset HF_HUB_OFFLINE once, or give a local folder"
            ) from exc
        raise HubModelNotFoundError(f"hf:{where}: the Hub is unreachable and the model is not in {cache}") from exc
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as exc:
        raise HubModelNotFoundError(
            f"hf:{where}: no such model on the Hub, or it is gated/private (log in with `hf auth login`)"
        ) from exc
    except HfHubHTTPError as exc:
        raise HubModelNotFoundError(f"hf:{where}: the Hub refused the download ({exc})") from exc
    return folder
