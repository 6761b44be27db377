"""The chat page end to end: Chromium -> page -> proxy -> simulator, all on loopback."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from gloo_stream.simulator import expected_answer

pytestmark = pytest.mark.browser


def test_answer_streams_in_visibly_before_it_ends(slow_chat: Any) -> None:
    page = slow_chat.page
    slow_chat.ask("How do tokens stream?")
    expected = "".join(expected_answer([{"role": "user", "content": "How do tokens stream?"}]))
    answer = slow_chat.answer().locator(".answer")
    # Partial text is in the DOM while the turn still says it is streaming.
    page.wait_for_function(
        """() => {
            const turn = document.querySelector('.turn.assistant');
            const text = turn.querySelector('.answer').textContent;
            return turn.dataset.state === 'streaming' && text.length > 20;
        }"""
    )
    partial = answer.text_content()
    assert slow_chat.state() == "streaming"
    assert page.locator("#stop").is_enabled()
    assert page.locator("#send").is_disabled()
    assert "Streaming" in page.locator("#status").text_content()

    slow_chat.wait_settled()
    final = answer.text_content()
    assert slow_chat.state() == "done"
    assert len(partial) < len(final)
    assert final.startswith(partial[:10])
    assert expected.split("\n")[0].removeprefix("## ").split()[0] in final
    meta = slow_chat.answer().locator(".meta").text_content()
    assert meta.startswith("Done")
    assert "TTFT" in meta
    assert "tokens" in meta
    assert "tok/s" in meta
    assert answer.get_attribute("aria-busy") == "false"
    assert slow_chat.errors == []


def test_markdown_renders_with_code_copy_button(fast_chat: Any, context: Any) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    fast_chat.ask("Show me markdown")
    answer = fast_chat.wait_settled().locator(".answer")
    assert fast_chat.state() == "done"
    # The simulator's answers always carry a heading, a list, bold text, code and a link.
    assert answer.locator("h2").count() == 1
    assert answer.locator("ul > li").count() >= 1
    assert answer.locator("strong").count() >= 1
    assert answer.locator("pre > code.language-python").count() == 1
    assert (
        answer.locator("a[href^='https://']").get_attribute("rel") == "noopener noreferrer nofollow"
    )
    assert "**" not in answer.text_content()  # no markdown syntax left raw

    code = answer.locator("pre code").text_content()
    copy = answer.locator("button.copy-code")
    copy.click()
    # The copy is asynchronous (the clipboard is the browser's): wait for the button to say so.
    expect(copy).to_have_text("Copied")
    assert fast_chat.page.evaluate("navigator.clipboard.readText()") == code


def test_each_turn_sends_the_whole_history(fast_chat: Any) -> None:
    first, second = "What is SSE?", "And why not WebSockets?"
    fast_chat.ask(first)
    fast_chat.wait_settled(1)
    fast_chat.ask(second)
    fast_chat.wait_settled(2)
    body = fast_chat.simulator.stats()["last_request"]
    answer = "".join(expected_answer([{"role": "user", "content": first}]))
    assert body["messages"] == [
        {"role": "user", "content": first},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": second},
    ]
    assert body["auto_routing"] is True
    assert body["stream"] is True


def test_stop_keeps_the_partial_answer_and_closes_the_upstream_stream(slow_chat: Any) -> None:
    page, simulator = slow_chat.page, slow_chat.simulator
    slow_chat.ask("Tell me a long story")
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant .answer').textContent.length > 10"
    )
    assert simulator.stats()["streams_open"] == 1
    page.locator("#stop").click()
    turn = slow_chat.wait_settled()
    assert slow_chat.state() == "stopped"
    partial = turn.locator(".answer").text_content()
    assert len(partial) > 10
    assert "You stopped this answer" in turn.locator(".notice").text_content()
    assert turn.locator(".meta").text_content().startswith("Stopped")
    # The proxy noticed the page went away and closed its upstream stream.
    assert simulator.wait_until(lambda stats: stats["streams_open"] == 0, timeout=5)
    time.sleep(0.3)
    assert turn.locator(".answer").text_content() == partial  # nothing arrives after Stop
    assert page.locator("#send").is_enabled()
    assert page.locator("#stop").is_disabled()


def test_escape_stops_an_answer(slow_chat: Any) -> None:
    page = slow_chat.page
    slow_chat.ask("Another long one")
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant').dataset.state === 'streaming'"
    )
    page.keyboard.press("Escape")
    slow_chat.wait_settled()
    assert slow_chat.state() == "stopped"
    assert slow_chat.simulator.wait_until(lambda stats: stats["streams_open"] == 0, timeout=5)


# A cut answer is continued up to twice (GLOO_MAX_CONTINUATIONS' default): a mid-stream fault
# strikes all three parts (``times``) so the turn shows the failure once the bound is reached.
FAULTS = [
    pytest.param(
        {"kind": "status", "status": 429, "retry_after": "2"},
        "error",
        ["Too many requests right now (HTTP 429)", "rate limiting", "Try again in 2 s."],
        id="status-429",
    ),
    pytest.param(
        {"kind": "status", "status": 500},
        "error",
        ["upstream model service failed (HTTP 502)"],
        id="status-500",
    ),
    pytest.param(
        {"kind": "disconnect", "after": 3, "times": 3},
        "error",
        ["The upstream connection dropped", "incomplete"],
        id="disconnect",
    ),
    pytest.param(
        {"kind": "error", "after": 3, "code": 2001, "name": "PROVIDER_TIMEOUT", "times": 3},
        "error",
        ["The model failed mid-answer (PROVIDER_TIMEOUT)"],
        id="error-event",
    ),
    pytest.param(
        {"kind": "content_filter", "after": 3},
        "filtered",
        ["stopped by the content filter"],
        id="content-filter",
    ),
    pytest.param(
        {"kind": "truncate", "after": 3, "times": 3},
        "error",
        ["The upstream stream ended early"],
        id="truncate",
    ),
    pytest.param(
        {"kind": "malformed", "after": 3},
        "error",
        ["malformed chunk"],
        id="malformed",
    ),
]


@pytest.mark.parametrize(("fault", "state", "messages"), FAULTS)
def test_each_fault_shows_its_message_in_the_turn(
    fast_chat: Any, fault: dict[str, Any], state: str, messages: list[str]
) -> None:
    fast_chat.simulator.push_fault(fault)
    fast_chat.ask("Trigger a fault")
    turn = fast_chat.wait_settled()
    assert fast_chat.state() == state
    notice = turn.locator(".notice")
    assert notice.is_visible()
    for message in messages:
        assert message in notice.text_content()
    retry = notice.locator("button.retry")
    if state == "filtered":
        assert retry.count() == 0  # terminal: never retried
    else:
        assert retry.count() == 1
        assert notice.get_attribute("role") == "alert"
        assert "Error" in fast_chat.page.locator("#status").text_content()
    assert fast_chat.errors == []


@pytest.mark.parametrize("kind", ["multiline", "crlf"])
def test_unusual_but_valid_framing_streams_normally(fast_chat: Any, kind: str) -> None:
    fast_chat.simulator.push_fault({"kind": kind})
    fast_chat.ask("Frame it oddly")
    turn = fast_chat.wait_settled()
    assert fast_chat.state() == "done"
    assert turn.locator(".notice").is_hidden()
    assert turn.locator(".answer h2").count() == 1


def test_retry_after_an_error_replaces_the_failed_turn(fast_chat: Any) -> None:
    fast_chat.simulator.push_fault({"kind": "error", "after": 2, "times": 3})  # past continuing
    fast_chat.ask("Try twice")
    turn = fast_chat.wait_settled()
    assert fast_chat.state() == "error"
    turn.locator("button.retry").click()
    fast_chat.page.wait_for_function(
        "() => document.querySelector('.turn.assistant')?.dataset.state === 'done'"
    )
    assert fast_chat.page.locator(".turn.assistant").count() == 1
    assert fast_chat.page.locator(".turn.user").count() == 1
    messages = fast_chat.simulator.stats()["last_request"]["messages"]
    assert messages == [{"role": "user", "content": "Try twice"}]


def test_a_stream_without_finish_reason_shows_as_cut_off(fast_chat: Any) -> None:
    chunk = '{"choices":[{"delta":{"content":"Half an ans"},"finish_reason":null,"index":0}]}'
    fast_chat.page.route(
        "**/api/stream",
        lambda route: route.fulfill(
            status=200, content_type="text/event-stream", body=f"data: {chunk}\n\n"
        ),
    )
    fast_chat.ask("Cut me off")
    turn = fast_chat.wait_settled()
    assert fast_chat.state() == "cut"
    assert "Half an ans" in turn.locator(".answer").text_content()
    assert "cut off" in turn.locator(".notice").text_content()
    assert turn.locator("button.retry").count() == 1


def test_done_sentinel_without_finish_reason_is_a_normal_end(fast_chat: Any) -> None:
    chunk = '{"choices":[{"delta":{"content":"All here."},"finish_reason":null,"index":0}]}'
    body = f": heartbeat\r\n\r\ndata: {chunk}\r\n\r\ndata: [DONE]\r\n\r\n"
    fast_chat.page.route(
        "**/api/stream",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body),
    )
    fast_chat.ask("Finish with DONE")
    turn = fast_chat.wait_settled()
    assert fast_chat.state() == "done"
    assert turn.locator(".answer").text_content().strip() == "All here."


def test_network_loss_and_non_json_errors_get_a_human_sentence(fast_chat: Any) -> None:
    page = fast_chat.page
    page.route("**/api/stream", lambda route: route.abort("connectionreset"))
    fast_chat.ask("No network")
    turn = fast_chat.wait_settled(1)
    assert fast_chat.state(1) == "error"
    assert "Could not reach the server" in turn.locator(".notice").text_content()

    page.unroute("**/api/stream")
    page.route(
        "**/api/stream",
        lambda route: route.fulfill(status=503, content_type="text/html", body="<h1>oops</h1>"),
    )
    fast_chat.ask("Gateway trouble")
    turn = fast_chat.wait_settled(2)
    text = turn.locator(".notice").text_content()
    assert "The service is unavailable right now (HTTP 503)." in text
    assert "<h1>" not in text


def rendered(page: Any) -> str:
    """The first answer's HTML without the renderer's block wrappers (which depend on timing)."""
    return str(
        page.evaluate(
            """() => {
                const copy = document.querySelector('.turn.assistant .answer').cloneNode(true);
                for (const part of [...copy.querySelectorAll('.md-part')])
                    part.replaceWith(...part.childNodes);
                return copy.innerHTML.replace(/>\\s+</g, '><');
            }"""
        )
    )


def test_history_survives_a_reload_and_new_chat_clears_it(fast_chat: Any) -> None:
    page = fast_chat.page
    fast_chat.ask("Remember me")
    fast_chat.wait_settled()
    before = rendered(page)
    fast_chat.reload()
    assert page.locator(".turn.user .bubble").text_content() == "Remember me"
    assert rendered(page) == before
    assert fast_chat.state() == "done"
    assert page.locator("#empty").is_hidden()

    page.locator("#new-chat").click()
    assert page.locator(".turn").count() == 0
    assert page.locator("#empty").is_visible()
    fast_chat.reload()
    assert page.locator(".turn").count() == 0


# Every turn of the page's model, as it is and as JSON would carry it: a DOM node (or any other
# object that is not plain data) would come out different, or make stringify throw.
MODEL_TURNS = """async () => {
    const { model } = await import('/static/app.js');
    const saved = JSON.parse(localStorage.getItem('gloo-stream.chat.v1')).turns;
    return { turns: model.turns, plain: JSON.parse(JSON.stringify(model.turns)), saved,
             nodes: model.turns.some((t) => Object.values(t).some((v) => v instanceof Node)) };
}"""


def test_the_model_holds_plain_data_saved_as_it_is(fast_chat: Any) -> None:
    # The model holds data, the view holds the DOM (TodoMVC's split): a turn has no `view`
    # property, survives a JSON round trip unchanged, and is stored exactly as the model has it.
    fast_chat.ask("Plain data, please")
    fast_chat.wait_settled()
    got = fast_chat.page.evaluate(MODEL_TURNS)
    assert [turn["role"] for turn in got["turns"]] == ["user", "assistant"]
    assert got["turns"][1]["content"] != ""
    assert not got["nodes"]
    assert all("view" not in turn for turn in got["turns"])
    assert got["plain"] == got["turns"] == got["saved"]
    # Ids tell the view which drawing is whose; they are unique and fresh after a reload.
    assert len({turn["id"] for turn in got["turns"]}) == 2
    fast_chat.reload()
    again = fast_chat.page.evaluate(MODEL_TURNS)
    contents = [turn["content"] for turn in got["turns"]]
    assert [turn["content"] for turn in again["turns"]] == contents
    assert len({turn["id"] for turn in again["turns"]}) == 2


def test_settings_choose_the_routing_and_persist(fast_chat: Any) -> None:
    page = fast_chat.page
    page.locator("#settings-toggle").click()
    page.locator("input[name=routing][value=family]").check()
    page.locator("#model-family").select_option("anthropic")
    page.locator("#tradition").select_option("catholic")
    fast_chat.ask("Route me")
    fast_chat.wait_settled()
    body = fast_chat.simulator.stats()["last_request"]
    assert body["model_family"] == "anthropic"
    assert body["tradition"] == "catholic"
    assert "auto_routing" not in body
    fast_chat.reload()
    assert page.locator("#model-family").input_value() == "anthropic"
    assert page.locator("input[name=routing][value=family]").is_checked()


def test_new_chat_while_answering_cancels_it_cleanly(slow_chat: Any) -> None:
    page, simulator = slow_chat.page, slow_chat.simulator
    slow_chat.ask("Start answering")
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant')?.dataset.state === 'streaming'"
    )
    page.locator("#new-chat").click()
    assert page.locator(".turn").count() == 0
    assert simulator.wait_until(lambda stats: stats["streams_open"] == 0, timeout=5)
    assert page.locator("#send").is_enabled()
    simulator.push_fault({"kind": "answer", "text": "Fresh start."})
    slow_chat.ask("Begin again")
    turn = slow_chat.wait_settled()
    assert turn.locator(".answer").text_content().strip() == "Fresh start."
    assert simulator.stats()["last_request"]["messages"] == [
        {"role": "user", "content": "Begin again"}
    ]
    assert page.locator(".turn").count() == 2
