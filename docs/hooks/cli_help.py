"""MkDocs hook: put each command's real ``--help`` into the CLI page, so it never drifts.

A line ``<!-- flux-erase-help: run -->`` in a page becomes a fenced block with the output of
``flux-erase run --help``; ``<!-- flux-erase-help: -->`` gives the top-level usage.

Example:
    >>> "usage: flux-erase" in render_markers("<!-- flux-erase-help: -->")
    True
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

MARKER = re.compile(r"^<!-- flux-erase-help:\s*([a-z-]*)\s*-->$", re.MULTILINE)


def command_help(command: str) -> str:
    """The help text of ``flux-erase <command>`` (the top-level usage for ``""``).

    Example:
        >>> command_help("emulator").startswith("usage: flux-erase emulator")
        True
    """
    from prefect_flux_erase.cli import main

    argv = [command, "--help"] if command else ["--help"]
    out = io.StringIO()
    code: Any = 0
    # argparse wraps to the terminal's width: fix it, so the page is the same on every machine.
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "78"
    try:
        with contextlib.redirect_stdout(out):
            code = main(argv)
    except SystemExit as exc:  # argparse exits after printing help
        code = exc.code
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    text = out.getvalue().strip()
    if code not in (0, None) or not text.startswith("usage:"):
        raise ValueError(f"`flux-erase {command} --help` gave exit {code!r}: {text[:200]!r}")
    return text


def render_markers(markdown: str) -> str:
    """Replace every help marker in ``markdown`` with that command's help, fenced.

    Example:
        >>> render_markers("no markers here")
        'no markers here'
    """
    return MARKER.sub(lambda m: f"```text\n{command_help(m.group(1))}\n```", markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: render the markers of every page.

    Example:
        >>> on_page_markdown("text")
        'text'
    """
    return render_markers(markdown)
