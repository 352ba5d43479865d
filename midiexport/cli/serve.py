"""``midiexport serve``: receive the API's callbacks, keep them, convert them.

What the command line can check is checked before the server listens (``--path``, ``-o``,
``--report``, ``--log``, a public host without a key), so a bad option is one line and
no server. The options shared with convert and fetch get serve's own help (``help_for``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..defaults import DEFAULT_MAX_BODY_BYTES, HEALTH_PATH
from .common import (
    NOT_TEMPO_MAPPED,
    ConversionCommand,
    Seconds,
    build_convert_options,
    help_for,
    output_options,
    unused_help,
    with_options,
)

# What serve does with the options it shares with convert and fetch (cli.common.output_options).
SERVE_HELP = {
    "out": "Folder for the .mid files (created); raw callbacks are kept under OUT/callbacks/. "
    "Default: the current folder.",
    "jobs": "Conversion worker processes (default: the machine's cores).",
    "report": "Append one JSON line per converted callback (task id, outcome, files) to FILE.",
    "quiet": "No request log; only errors (log lines with their fields, to --log or stderr).",
    "verbose": unused_help("serve", "its log has every field already. Refused with -q, as on every command."),
    "overwrite": unused_help("serve", "it never replaces a file (a different body for a task gets a name of its own)."),
    "tempo_map": unused_help("serve", f"callbacks are {NOT_TEMPO_MAPPED}."),
    "max_input_mb": unused_help("serve", "a callback's size is limited by --max-body-mb."),
}


def _url_path(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.startswith("/"):
        raise click.BadParameter(f"{value!r} is not a URL path: give one starting with / (e.g. /callback)")
    if value == HEALTH_PATH:
        raise click.BadParameter(f"{value} is the health route (GET {HEALTH_PATH}); give the callbacks another path")
    return value


def _key_or_none(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return value or None  # an empty key is no key, as an empty MIDIEXPORT_WEBHOOK_KEY is


def serve_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options of ``serve``: where it listens, the webhook key, the limits."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on (loopback unless a key is set)."),
        click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
                     help="TCP port; 0 picks a free one (the URL is printed)."),
        click.option("--path", "callback_path", default="/callback", show_default=True, callback=_url_path,
                     help="URL path that receives callbacks (give the full URL as callBackUrl)."),
        click.option("--hmac-key", envvar="MIDIEXPORT_WEBHOOK_KEY", show_envvar=True, metavar="KEY",
                     callback=_key_or_none, help="Webhook key: every callback must carry a valid X-Webhook-Signature."),
        click.option("--insecure-public", is_flag=True, help="Allow a non-loopback --host without a webhook key."),
        click.option("--window", "window_s", type=Seconds(1), default=300, show_default=True,
                     help="Seconds a signed timestamp stays valid (older ones are replays)."),
        click.option("--max-body-mb", type=Seconds(0.001, unit="MiB"), default=DEFAULT_MAX_BODY_BYTES / 2**20,
                     show_default=True, help="Largest callback body in MiB (larger: 413)."),
        click.option("--queue", "queue_size", type=click.IntRange(1, 1_000_000), default=1024, show_default=True,
                     help="Callbacks waiting for conversion before new ones get 503 with Retry-After."),
        click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
                     help="Append the request log (JSON lines) to this file instead of stderr."),
    ]  # fmt: skip
    return with_options(command, options)


@help_for(**SERVE_HELP)
@click.command(cls=ConversionCommand)
@serve_options
@output_options
def serve(**options: Any) -> None:
    """Receive the API's callbacks, store them durably and convert them.

    Give http://HOST:PORT/callback as callBackUrl (for instance to `generate
    --callback-url`). Raw callbacks are kept under OUT/callbacks/, .mid files in OUT.

    \b
      midiexport serve -o midi/                       loopback, port 8000
      midiexport serve --host 0.0.0.0 --hmac-key KEY -o midi/ --bpm auto

    Needs the extra: pip install "midiexport[serve]". Stops on Ctrl-C or SIGTERM.
    """
    from ..jobs.runner import default_jobs
    from ..jobs.serve import ServeOptions, run_server

    check_host(options["host"], hmac_key=options["hmac_key"], insecure_public=options["insecure_public"])
    _check_extra()
    out_dir = _output_folder(options)
    report = _report_path(options["report"])
    _serve_logging(options)
    settings = ServeOptions(
        out_dir=out_dir, path=options["callback_path"], hmac_key=options["hmac_key"],
        window_s=options["window_s"], max_body_bytes=int(options["max_body_mb"] * 2**20),
        queue_size=options["queue_size"], workers=options["jobs"] or default_jobs(),
        report=report, options=build_convert_options(options),
    )  # fmt: skip
    try:  # the extra is there (_check_extra): an ImportError now would be a bug, not a missing extra
        run_server(settings, host=options["host"], port=options["port"],
                   announce=lambda url: click.echo(f"listening on {url}", err=True))  # fmt: skip
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}"
        ) from None
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C, then raises it again: the contract's status, no "Aborted!"
        from .report import EXIT_INTERRUPTED

        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def _check_extra() -> None:
    """Fail in one line when the serve extra is missing: before -o's folder is made or anything is written."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(f"serve needs its extra: pip install 'midiexport[serve]' ({exc})") from None


def _output_folder(options: dict[str, Any]) -> Path:
    """Return the folder -o names, made now: a usage error when it is a file, one line when it cannot be made.

    A new path with a suffix and no trailing slash (``out.txt``) is refused as convert and
    fetch refuse it (``names_new_file``): made a folder, it would surprise whoever meant a file.
    Made here, not by ``run_server``: before ``--report`` is checked, which may name a file inside it.
    """
    from ..jobs.runner import names_new_file, names_one_file

    out = options["out"]
    folder = Path(out or ".")
    if folder.is_file():
        raise click.UsageError(f"-o {out} is a file, not a folder; serve writes many files into a folder")
    if names_one_file(out):
        raise click.UsageError("serve writes many files: -o takes a folder")
    if out is not None and names_new_file(out):
        raise click.UsageError(f"-o {out} names a file, not a folder; serve writes many files into a folder: "
                               f"give {out}/ (a trailing /) for a folder of that name")  # fmt: skip
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot make the folder -o {folder}: {exc.strerror or exc}") from None
    return folder


def _report_path(report: str | None) -> Path | None:
    """Return the --report file, checked now (opened to append): a usage error when it cannot take lines."""
    if report is None:
        return None
    if report == "-":
        raise click.UsageError("serve appends its report to a file: --report takes a path")
    try:
        with open(report, "ab"):
            pass
    except OSError as exc:
        raise click.UsageError(f"--report {report} cannot be appended to: {exc.strerror or exc}") from None
    return Path(report)


def check_host(host: str, *, hmac_key: str | None, insecure_public: bool) -> None:
    """Raise a usage error when the server would listen beyond loopback without a webhook key (None or empty)."""
    from ..io.http import is_loopback

    if not (hmac_key or insecure_public or is_loopback(host)):
        raise click.UsageError(
            f"listening on {host} without a webhook key lets anyone post; set --hmac-key "
            "(or MIDIEXPORT_WEBHOOK_KEY), or pass --insecure-public"
        )


def _serve_logging(options: dict[str, Any]) -> None:
    import logging

    from ..jobs.serve import LOG, LogFormatter

    try:
        handler = logging.FileHandler(options["log_path"]) if options["log_path"] else logging.StreamHandler(sys.stderr)
    except OSError as exc:
        raise click.ClickException(f"cannot open the log {options['log_path']}: {exc.strerror or exc}") from None
    handler.setFormatter(LogFormatter())
    LOG.addHandler(handler)
    LOG.setLevel(logging.ERROR if options["quiet"] else logging.INFO)  # -q: errors still come with their fields
