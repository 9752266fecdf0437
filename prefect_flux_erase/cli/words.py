"""The words of `flux-erase`: its argument parser, and errors reworded with its flags.

The run's checks live in the core and speak Python (``shard_size must be >= 1``, ``Pass
image_column=``); :func:`for_cli` rewords them with the flag to fix (``--shard-size``,
``--image-column``), so a mistake is explained in the words of the interface that was used.

Example:
    >>> for_cli("shard_size must be an integer >= 1; got 0", "shard_size")
    '--shard-size must be an integer >= 1; got 0'
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

#: Python parameters and API fields, as the CLI spells them (messages name the flag to fix).
FLAGS: dict[str, str] = {
    "output": "--output",
    "backend": "--backend",
    "shard_size": "--shard-size",
    "concurrency": "--concurrency",
    "max_shards_in_flight": "--max-shards-in-flight",
    "max_failed_fraction": "--max-failed-fraction",
    "poll_timeout": "--poll-timeout",
    "image_column": "--image-column",
    "mask_column": "--mask-column",
    "key_column": "--key-column",
    "local_engine": "--engine",
    "storage_options": "--storage-options",
    "output_storage_options": "--output-storage-options",
    "unpaired": "--skip-unpaired",
    "settings.dilatePixels": "--dilate-pixels",
    "outputQuality": "--output-quality",
    "outputFormat": "--output-format",
    "outputType": "--output-type",
    "numberResults": "--number-results",
    # The money options (cli/cost_commands.py adds their flags).
    "max_cost_usd": "--max-cost",
    "cache_storage_options": "--cache-storage-options",
    "pass_urls": "--pass-urls",
    "allow_private_hosts": "--allow-private-host",
    "verify_estimate": "--verify-estimate",
    "upload_inputs": "--upload-inputs",
}
NO_KEY = (
    "--backend runware needs an API key: set RUNWARE_API_KEY, or name a saved Runware "
    "Credentials block with --credentials-block NAME (or use --backend local to run offline)"
)


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2.

    Example:
        >>> str(UsageError("--base-url applies to --backend runware only"))[:10]
        '--base-url'
    """


class _HelpFormatter(argparse.HelpFormatter):
    """Help lines end with the option's default, when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes raise :class:`UsageError` and whose help shows the
    defaults.

    Example:
        >>> p = Parser(prog="x"); _ = p.add_argument("--n", type=int, default=3, help="count")
        >>> "(default: 3)" in p.format_help()
        True
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(formatter_class=_HelpFormatter, **kwargs)

    def error(self, message: str) -> Any:  # argparse would print usage and exit itself
        raise UsageError(f"{self.prog}: {message}")


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (fsspec options).

    Example:
        >>> json_object('{"anon": true}')
        {'anon': True}
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"anon\": true}'")
    return value


def any_case(*choices: str) -> Callable[[str], str]:
    """An argparse type that accepts ``choices`` in any case (``png`` is ``PNG``).

    Example:
        >>> any_case("JPG", "PNG")("png")
        'PNG'
    """
    spelled = {c.lower(): c for c in choices}
    return lambda text: spelled.get(text.strip().lower(), text)


def for_cli(message: str, parameter: str | None = None) -> str:
    """Reword a message written for Python callers with the CLI's flags; ``parameter`` (an
    error's own) is the option a message starts with.

    Example:
        >>> for_cli("concurrency must be an integer >= 1; got 0", "concurrency")
        '--concurrency must be an integer >= 1; got 0'

        >>> for_cli("manifest m has no column 'photo' (image_column). Pass image_column= ...")
        "manifest m has no column 'photo' (--image-column). Pass --image-column ..."
        >>> for_cli("settings.dilatePixels: must be an integer from 0 to 50; got 99")
        '--dilate-pixels (settings.dilatePixels): must be an integer from 0 to 50; got 99'
    """
    message = message.replace("backend='local'", "--backend local")
    message = message.replace("unpaired='skip'", "--skip-unpaired")
    for name, flag in FLAGS.items():
        if "_" in name:  # a Python parameter: its spelling is unmistakable
            message = re.sub(rf"\b{name}=\s?", f"{flag} ", message)
            message = re.sub(rf"(?<![\w.-]){name}\b", flag, message)
        elif "." in name or (name[0].islower() and any(c.isupper() for c in name)):
            message = re.sub(rf"(?<![\w.-]){re.escape(name)}:", f"{flag} ({name}):", message)
    if parameter in FLAGS and message.startswith(f"{parameter} "):
        message = FLAGS[parameter] + message[len(parameter) :]
    return message


def cli_error(exc: BaseException) -> str:
    """One line for a configuration error, worded for the command line.

    Example:
        >>> from prefect_flux_erase.run.spec import RunConfigError
        >>> cli_error(RunConfigError("poll_timeout must be > 0 seconds; got 0",
        ...                          parameter="poll_timeout"))
        '--poll-timeout must be > 0 seconds; got 0'
    """
    from pydantic import ValidationError

    if getattr(exc, "parameter", None) == "runware":
        return NO_KEY
    if isinstance(exc, ValidationError):
        # The options model wraps our InvalidOptionError: show its message, not pydantic's.
        text = "; ".join(
            str(e.get("ctx", {}).get("error") or f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors()
        )
        return for_cli(text)
    return for_cli(str(exc), getattr(exc, "parameter", None))


def is_config_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a mistake in the options, the manifest or the credentials (exit 2).

    Example:
        >>> is_config_error(ValueError("x")), is_config_error(UsageError("y"))
        (False, True)
    """
    from pydantic import ValidationError

    from prefect_flux_erase.cli.prefect_home import BlockNotFound
    from prefect_flux_erase.manifest.reader import ManifestError
    from prefect_flux_erase.run.spec import RunConfigError
    from prefect_flux_erase.runware.errors import AuthenticationError, InvalidOptionError

    return isinstance(
        exc,
        RunConfigError
        | ManifestError
        | InvalidOptionError
        | AuthenticationError
        | ValidationError
        | BlockNotFound
        | UsageError,
    )
