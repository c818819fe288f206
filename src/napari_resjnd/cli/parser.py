"""The ``resjnd`` argument parser: each command adds its own arguments and checks
(``add_commands`` in its module); this one assembles them and runs the checks every
command shares. Defaults and choices come from the core, so the help text cannot
drift from the code."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.devices import AUTO
from . import compress, doctor, predict, research, training, visibility
from ._common import Parser, UsageError, check_device

#: The modules that add commands, in the order ``resjnd --help`` lists them.
COMMAND_MODULES = (predict, training, research, compress, visibility, doctor)
#: The commands that run ResJND for its maps (inference precisions, int8 included).
INFERENCE_COMMANDS = ("predict", "evaluate", "compress", "visibility")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="resjnd", description="ResJND just-noticeable-difference maps.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show Python tracebacks (for bug reports)")
    common.add_argument(
        "--verbose", "-v", action="store_true", help="log the decisions taken (precision, device, caches, fallbacks)"
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(parent: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
        return parent.add_parser(name, parents=[common], **kw)

    for module in COMMAND_MODULES:
        module.add_commands(sub, command)
    return p


def check_args(args: argparse.Namespace) -> None:
    """Every argument and input path checked before any work (one-line errors): the
    device and precision here, the rest by the command's own ``check``."""
    if getattr(args, "device", None) is not None:
        check_device(args.device)
        if getattr(args, "precision", AUTO) != AUTO:
            from ..core.devices import resolve_device
            from ..core.precision import check as check_precision

            inference = args.command in INFERENCE_COMMANDS
            try:
                check_precision(args.precision, resolve_device(args.device), inference=inference)
            except ValueError as e:
                raise UsageError(f"--precision {args.precision}: {e}") from None
    check = getattr(args, "check", None)
    if check is not None:
        check(args)
