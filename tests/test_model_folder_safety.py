"""Model folders: loading never runs code shipped with a folder, saves are atomic, and a folder
that is not whole (no lateint record, no usable tokenizer) is refused with one line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from lateint import checkpoints
from lateint.errors import ConfigError, MissingResourceError, StorageError
from lateint.ranker import SplitRanker

EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


def remote_code_folder(tiny_model, tmp_path, where="config.json"):
    folder = tmp_path / "evil"
    shutil.copytree(tiny_model("bert", 2), folder)
    marker = tmp_path / "ran"
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker)))
    data = json.loads((folder / where).read_text()) if (folder / where).exists() else {}
    data["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoConfig": "evil.EvilConfig",
                        "AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / where).write_text(json.dumps(data))
    return folder, marker


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_a_folder_asking_for_remote_code_is_refused(tiny_model, tmp_path, where):
    folder, marker = remote_code_folder(tiny_model, tmp_path, where)
    with pytest.raises(ConfigError, match="never runs code"):
        SplitRanker.from_pretrained(folder)
    assert not marker.exists()


def test_a_family_only_shipped_code_could_load_is_refused_in_one_line(tiny_model, tmp_path, monkeypatch):
    """Without lateint's own auto_map check, a model type that only the folder's code could load
    is refused in one line (as not a supported family); nothing is run and nothing prompts."""
    folder, marker = remote_code_folder(tiny_model, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evilbert"  # a family transformers does not have: only the shipped code could load it
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(checkpoints, "_refuse_remote_code", lambda path: None)
    with pytest.raises(ConfigError, match="not supported"):
        SplitRanker.from_pretrained(folder)
    assert not marker.exists()


def test_transformers_refusal_of_remote_code_becomes_one_line():
    """transformers' own refusal (trust_remote_code=False) is reported as lateint's one line; other
    loader errors are left to their own handling."""
    refusal = ValueError("The repository /m contains custom code which must be executed to correctly load the model. "
                         "Please pass the argument `trust_remote_code=True` to allow custom code to be run.")
    error = checkpoints._remote_code_refused(refusal, "/m")
    assert isinstance(error, ConfigError) and "never runs code" in str(error) and "\n" not in str(error)
    assert checkpoints._remote_code_refused(OSError("no such file"), "/m") is None


def test_every_loader_gets_trust_remote_code_false(tiny_model, cross_encoder_path, monkeypatch):
    import transformers

    seen = []
    for cls in (transformers.AutoModel, transformers.AutoModelForSequenceClassification, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, _name=cls.__name__, **kwargs):
            seen.append((_name, kwargs.get("trust_remote_code", "absent")))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    SplitRanker.from_pretrained(tiny_model("bert", 2))
    SplitRanker.from_pretrained(cross_encoder_path)
    assert {name for name, _ in seen} == {"AutoModel", "AutoModelForSequenceClassification", "AutoTokenizer"}
    assert all(value is False for _, value in seen), seen


@pytest.fixture
def two_models(tiny_model):
    a = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="twin")
    b = SplitRanker.from_pretrained(tiny_model("bert", 2), split=2, head="twin", seed=5)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.5)
    return a, b


def scores(ranker):
    return ranker.score(["what is a cat", "rain"], ["a cat is an animal", "it rains today"])


def test_a_failed_save_over_a_model_leaves_the_old_model(two_models, tmp_path, monkeypatch):
    a, b = two_models
    folder = tmp_path / "m"
    a.save_pretrained(folder)
    expected = scores(SplitRanker.from_pretrained(folder))

    def broken(*args, **kwargs):
        raise RuntimeError("killed midway")

    monkeypatch.setattr(b.tokenizer, "save_pretrained", broken)  # after the weights were written
    with pytest.raises(RuntimeError, match="killed midway"):
        b.save_pretrained(folder)
    back = SplitRanker.from_pretrained(folder)
    assert back.split == 1 and torch.equal(scores(back), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no partial sibling left behind


KILL = """
import os, sys, torch
from lateint.ranker import SplitRanker
b = SplitRanker.from_pretrained(sys.argv[1], split=2, head="twin", seed=5)
with torch.no_grad():
    for p in b.parameters():
        p.add_(0.5)
b.tokenizer.save_pretrained = lambda *a, **k: os._exit(9)
b.save_pretrained(sys.argv[2])
"""


def test_a_save_killed_midway_leaves_the_old_model(two_models, tiny_model, tmp_path):
    a, _ = two_models
    folder = tmp_path / "m"
    a.save_pretrained(folder)
    expected = scores(SplitRanker.from_pretrained(folder))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", KILL, str(tiny_model("bert", 2)), str(folder)], env=env)
    assert done.returncode == 9
    back = SplitRanker.from_pretrained(folder)
    assert back.split == 1 and torch.equal(scores(back), expected)


def test_a_save_replaces_the_whole_folder(two_models, tmp_path):
    a, b = two_models
    folder = tmp_path / "m"
    b.save_pretrained(folder)
    (folder / "stale.bin").write_bytes(b"x")
    a.save_pretrained(folder)
    assert not (folder / "stale.bin").exists()
    assert torch.equal(scores(SplitRanker.from_pretrained(folder)), scores(a))


def test_a_folder_of_other_files_is_not_replaced(two_models, tmp_path):
    a, _ = two_models
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a saved lateint model"):
        a.save_pretrained(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("failure", ["enospc", "safetensors"])
def test_a_full_disk_gives_one_line_and_leaves_nothing_complete(two_models, tmp_path, monkeypatch, failure):
    import safetensors.torch
    from safetensors import SafetensorError

    a, b = two_models
    folder = tmp_path / "m"
    a.save_pretrained(folder)
    before = sorted(p.name for p in folder.iterdir())

    def full(*args, **kwargs):
        if failure == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(StorageError, match="the disk is full") as info:
        b.save_pretrained(folder)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    with pytest.raises(StorageError):
        b.save_pretrained(tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("mark", ["lateint_head.safetensors", "split record"])
def test_a_folder_missing_lateints_record_is_refused(two_models, tmp_path, mark):
    a, _ = two_models
    folder = tmp_path / "m"
    a.save_pretrained(folder)
    (folder / "lateint.json").unlink()
    if mark == "split record":
        (folder / "lateint_head.safetensors").unlink()
    with pytest.raises(ConfigError, match="interrupted"):
        SplitRanker.from_pretrained(folder)


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


@pytest.mark.parametrize("lateint_folder", [True, False])
def test_a_folder_without_tokenizer_files_is_refused(two_models, cross_encoder_path, tmp_path, lateint_folder):
    folder = tmp_path / "m"
    if lateint_folder:
        two_models[0].save_pretrained(folder)
    else:
        shutil.copytree(cross_encoder_path, folder)
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(MissingResourceError, match="no usable tokenizer") as info:
        SplitRanker.from_pretrained(folder)
    assert "\n" not in str(info.value)


def test_a_sentence_transformers_module_path_outside_the_folder_is_refused(minilm_path, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(minilm_path, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["path"] = "../../elsewhere"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match="not a plain file name"):
        SplitRanker.from_pretrained(folder)
