"""Model cards, push_to_hub through a stand-in HfApi, and hub downloads with revision and token."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from lateint import InputError, SplitRanker


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records calls, keeps uploaded folders on disk."""

    def __init__(self, store: Path):
        self.store = store
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        from huggingface_hub import RepoUrl

        return RepoUrl(f"https://huggingface.co/{kwargs['repo_id']}")

    def create_branch(self, **kwargs):
        self.calls.append(("create_branch", kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        target = self.store / kwargs["repo_id"] / (kwargs.get("revision") or "main")
        shutil.copytree(kwargs["folder_path"], target, dirs_exist_ok=True)
        from huggingface_hub import CommitInfo

        return CommitInfo(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc123",
                          commit_message=kwargs["commit_message"], commit_description="", oid="abc123")


def test_model_card_names_base_split_head_layout_and_known_figures(tiny_model, tmp_path):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="twin", pooling="cls", crossing="dot")
    folder = ranker.save_pretrained(tmp_path / "m", card={"training": {"dataset": "beir/scifact/train", "steps": 400},
                                                          "results": {"nDCG@10 (beir/scifact/test)": 0.7012}})
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: lateint")
    for expected in ("L = 1 of T = 2", "twin (cls pooling, dot crossing)", f"| layout | {ranker.config.sides.layout} |",
                     "beir/scifact/train", "| steps | 400 |", "0.7012", str(tiny_model("bert", 2))):
        assert expected in card
    with pytest.raises(InputError, match="unknown model card key"):
        ranker.save_pretrained(tmp_path / "bad", card={"figures": {}})


def test_push_to_hub_uploads_a_folder_that_loads_back(tiny_model, tmp_path):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=2, head="twin")
    api = RecordingApi(tmp_path / "hub")
    url = ranker.push_to_hub("me/tiny-twin", private=True, revision="v1", api=api, card={"description": "A test."})
    assert url.endswith("/commit/abc123")
    names = [name for name, _ in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1]["private"] is True and api.calls[1][1]["branch"] == "v1"
    uploaded = tmp_path / "hub" / "me" / "tiny-twin" / "v1"
    assert {"README.md", "lateint.json", "config.json", "modules.json"} <= {p.name for p in uploaded.iterdir()}
    again = SplitRanker.from_pretrained(uploaded)
    q, d = ["a lobster roll"], ["lobster meat on a bun"]
    torch.testing.assert_close(again.score(q, d), ranker.score(q, d), rtol=0, atol=0)
    with pytest.raises(InputError, match="repo_id"):
        ranker.push_to_hub("a/b/c", api=api)


def test_from_pretrained_passes_revision_and_token_to_the_hub(tiny_model, monkeypatch):
    import huggingface_hub

    seen = {}
    local = tiny_model("bert", 2)

    def fake_snapshot_download(repo_id, revision=None, token=None, **kwargs):
        seen.update(repo_id=repo_id, revision=revision, token=token)
        return str(local)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    ranker = SplitRanker.from_pretrained("someone/private-ranker", split=1, revision="3f2a9c1", token="hf_secret")
    assert seen == {"repo_id": "someone/private-ranker", "revision": "3f2a9c1", "token": "hf_secret"}
    assert ranker.split == 1
