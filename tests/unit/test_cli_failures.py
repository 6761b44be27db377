"""The command's one printer of the ✗ line, and explanations read from the catalogue."""

from __future__ import annotations

import io

from rich.console import Console

from gloo_stream.cli.failures import explain, print_failure
from gloo_stream.errors import BadRequestError, ExitStatus, InvalidRequestError


def printed(lines: list[str], **kwargs: str) -> str:
    buffer = io.StringIO()
    print_failure(Console(file=buffer, width=200), lines, **kwargs)
    return buffer.getvalue()


def test_the_cross_line_then_indented_hints() -> None:
    text = printed(["It broke", "Fix it", "Or this"])
    assert text == "✗ It broke\n  Fix it\n  Or this\n"
    assert printed(["Bad key", "Check it"], hint_prefix="fix: ") == "✗ Bad key\n  fix: Check it\n"


def test_a_message_is_never_read_as_markup_or_emoji() -> None:
    line = "--model: unknown '[bold]x[/]' :thumbs_up: [/]"
    assert printed([line]) == f"✗ {line}\n"


def test_explanations_come_from_the_catalogue() -> None:
    usage = explain(InvalidRequestError("temperature must be 0 to 2", field="temperature"))
    assert (usage.status, usage.lines) == (ExitStatus.USAGE, ["temperature must be 0 to 2"])
    refused = explain(BadRequestError("API error (422): nope", status_code=422))
    assert refused.status is ExitStatus.UPSTREAM
    assert refused.lines == ["API error (422): nope", BadRequestError.advice]
