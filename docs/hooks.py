"""mkdocs hook: the CLI reference, generated from ``resjnd``'s argparse parsers
at build time (so the documented options and defaults cannot drift)."""

from __future__ import annotations

import argparse

MARKER = "<!-- cli-reference -->"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse offers no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _section(path: str, parser: argparse.ArgumentParser, level: int) -> str:
    parser.prog = path
    text = f"{'#' * level} `{path}`\n\n```text\n{parser.format_help().rstrip()}\n```\n\n"
    for name, sub in _subparsers(parser).items():
        text += _section(f"{path} {name}", sub, level + 1)
    return text


def cli_reference() -> str:
    from napari_resjnd.cli import build_parser

    root = build_parser()
    return "".join(_section(f"resjnd {name}", sub, 2) for name, sub in _subparsers(root).items())


def on_page_markdown(markdown: str, **_: object) -> str:
    return markdown.replace(MARKER, cli_reference()) if MARKER in markdown else markdown
