"""The documentation site builds with ``mkdocs build --strict``, and a broken link or a missing
included file stops the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")

REPO = Path(__file__).resolve().parents[2]


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"),
                           "-d", str(site)], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def _copy_of_the_site_sources(tmp_path: Path) -> Path:
    """mkdocs.yml and docs/ copied (to be broken), the package and the results linked."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "mkdocs.yml", root)
    shutil.copytree(REPO / "docs", root / "docs")
    for name in ("lateint", "benchmarks"):
        (root / name).symlink_to(REPO / name)
    return root


def test_the_site_builds_strictly_with_generated_references(tmp_path):
    done = _build(REPO, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-4000:]
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    from lateint.cli.main import build_parser

    # every subcommand's help, generated from the parsers
    for action in build_parser()._subparsers._group_actions:
        for name in action.choices:
            assert f"lateint {name} [-h]" in cli, name
    assert "lateint cache build [-h]" in cli and "--num-shards" in cli
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "SplitRanker" in api and "from_pretrained" in api and "DocCache" in api
    # the committed figures are published where the pages link them, the tables included
    for figure in ("benchmarks/results/sweep-default/pareto.png", "benchmarks/results/effectiveness/scifact/depth.png"):
        assert (site / figure).read_bytes() == (REPO / figure).read_bytes()
    results = (site / "results" / "index.html").read_text()
    assert "MiniLM-L6-twin-mean-cosine-L6-fp16" in results and "depth.png" in results
    recipe = (site / "recipes" / "sharded-cache" / "index.html").read_text()
    assert "--8&lt;--" not in recipe and "cache merge" in recipe
    assert "mermaid" in (site / "concepts" / "index.html").read_text()


def test_a_broken_link_fails_the_build(tmp_path):
    root = _copy_of_the_site_sources(tmp_path)
    page = root / "docs" / "concepts.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    done = _build(root, tmp_path / "site")
    assert done.returncode != 0 and "no-such-page.md" in done.stderr


def test_a_missing_included_file_fails_the_build(tmp_path):
    root = _copy_of_the_site_sources(tmp_path)
    page = root / "docs" / "recipes" / "sweep.md"
    page.write_text(page.read_text().replace("docs/recipes/sweep.sh", "docs/recipes/no_such_recipe.sh"))
    done = _build(root, tmp_path / "site")
    assert done.returncode != 0 and "no_such_recipe.sh" in done.stderr
