"""`wenu-stream completion bash|zsh|tcsh`: print a shell completion script for every command and flag.

The script is generated from this installation's argparse tree (shtab), so it
completes exactly the commands, flags and choices of the version installed,
and it is static: a TAB runs no Python (the CLI takes about a second to start
on a loaded machine; an argcomplete hook would pay that on every TAB). Install:

  bash   wenu-stream completion bash > ~/.local/share/bash-completion/completions/wenu-stream
  zsh    wenu-stream completion zsh > "${fpath[1]}/_wenu-stream"   (then: compinit)
  once   eval "$(wenu-stream completion bash)"

Generate it again after an upgrade.
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "tcsh")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from wenu_stream.cli.main import build_parser

    parser = build_parser()
    sys.stdout.write(shtab.complete(parser, shell=args.shell, root_prefix="wenu_stream"))
    return 0
