"""mkdocs hooks of the lateint site.

* ``reference/cli.md`` gets the help of every ``lateint`` command, generated from the parsers of
  :mod:`lateint.cli.main` at build time, so the page can never drift from the command line.
* The committed figures under ``benchmarks/results`` are published with the site (mkdocs only
  serves ``docs/``), so the Results page links the files themselves instead of copies.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the reference documents this checkout's lateint, installed or not
    sys.path.insert(0, str(REPO))
CLI_MARKER = "<!-- lateint-cli-reference -->"
#: Result files published under their own path (relative to the repository root).
RESULT_SUFFIXES = (".png", ".svg")
RESULT_ROOT = "benchmarks/results"


def on_files(files, config):
    """Add the figures under benchmarks/results to the site, at the same relative path."""
    root = REPO / RESULT_ROOT
    for path in sorted(root.rglob("*")):
        if path.suffix in RESULT_SUFFIXES and path.is_file():
            files.append(File(str(path.relative_to(REPO)), src_dir=str(REPO), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files


def _subcommands(parser: argparse.ArgumentParser):
    """(name, parser) of each subcommand, depth first, in the order the parser lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for child, subsub in _subcommands(sub):
                    yield f"{name} {child}", subsub


def cli_reference() -> str:
    """Markdown of ``lateint --help`` and every subcommand's ``--help``."""
    from lateint.cli.main import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width: fix it for a stable page
    try:
        parser = build_parser()
        parts = ["## `lateint`", "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, sub in _subcommands(parser):
            parts += [f"## `lateint {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    if CLI_MARKER in markdown:
        return markdown.replace(CLI_MARKER, cli_reference())
    return markdown
