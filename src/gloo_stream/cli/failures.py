"""How the command reports a failure: one or two lines a person can act on, and an exit status.

The messages, the fix to try and the exit status all come from the exception's catalogue entry
(``gloo_stream.errors``), so scripts can tell a usage mistake from bad credentials, a rate
limit, or an upstream failure. ``print_failure`` is the one printer of the ``✗`` line: every
command, view and check reports through it, so they all look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from rich.console import Console
from rich.text import Text

from gloo_stream.config import GlooSettings, settings_error
from gloo_stream.errors import MISSING_MODEL_HINT, BadRequestError, ExitStatus, GlooError

__all__ = [
    "EXIT_STATUS_HELP",
    "ExitStatus",
    "Explanation",
    "explain",
    "explain_settings",
    "fail",
    "help_paragraphs",
    "message_console",
    "print_failure",
]


EXIT_STATUS_HELP = (
    "Exit status: 0 ok · 1 unexpected failure · 2 usage (bad option, value or setting, or a "
    "port in use; nothing was sent) · 3 authentication or permission · 4 rate limited · "
    "5 upstream or stream failure (a partial answer is kept) · 130 interrupted (Ctrl-C)"
)


def help_paragraphs(text: str) -> str:
    """A command's help with each prose paragraph on one line, so the terminal's width wraps it.

    Typer's rich help keeps every newline as a hard break: a paragraph wrapped at 100 columns
    in the source came out ragged at 80. Indented lines (examples) keep their breaks.
    """
    blocks = text.strip("\n").split("\n\n")
    return "\n\n".join(
        block if block.startswith(" ") else " ".join(block.split("\n")) for block in blocks
    )


@dataclass(frozen=True, slots=True)
class Explanation:
    """What to print (first line: what happened; second: what to do) and how to exit."""

    status: ExitStatus
    lines: list[str]


def explain(error: GlooError, *, auth_mode: str = "none") -> Explanation:
    """The explanation of any error the core raises, read from its catalogue entry."""
    message = error.message
    if isinstance(error, BadRequestError) and error.missing_model:
        # The library's hint names model=; on the command line the fix is an option.
        message = message.removesuffix(f" ({MISSING_MODEL_HINT})")
    advice = error.advise(auth_mode=auth_mode)
    return Explanation(ExitStatus(error.exit_status), [message, advice] if advice else [message])


def explain_settings(
    error: ValidationError, settings_cls: type[BaseSettings] = GlooSettings
) -> Explanation:
    """A setting from the environment or ``.env`` (or an option) has a bad value: the
    library's ``ConfigurationError`` wording (the variable, and the value unless secret)."""
    return Explanation(ExitStatus.USAGE, [settings_error(error, settings_cls).message])


def message_console(*, stderr: bool = True) -> Console:
    """A console for notices and summaries.

    On a terminal, lines wrap between words (the terminal itself would cut one in two);
    elsewhere they are never hard-wrapped, so a log or a grep sees each message whole.
    """
    console = Console(stderr=stderr)
    console.soft_wrap = not console.is_terminal
    return console


def print_failure(console: Console, lines: Sequence[str], *, hint_prefix: str = "") -> None:
    """The ``✗`` line (what happened) in bold red, then each hint indented, in red.

    Printed as ``Text``, never as markup: a message quoting ``[brackets]`` or ``:colons:``
    from a server or an option is shown exactly as it is.
    """
    console.print(Text(f"✗ {lines[0]}", style="bold red"))
    for line in lines[1:]:
        console.print(Text(f"  {hint_prefix}{line}", style="red"))


def fail(status: ExitStatus, lines: Sequence[str]) -> typer.Exit:
    """Report on stderr; the caller raises the returned ``Exit`` (``raise fail(...)``)."""
    print_failure(message_console(), lines)
    return typer.Exit(int(status))
