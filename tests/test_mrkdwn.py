"""The mrkdwn helper on its own, and chat decoding that keeps what the user typed."""

from __future__ import annotations

import pytest

from bot.slack import mrkdwn
from commands.grammar import split_chat_text


def test_escape_makes_mentions_and_links_text() -> None:
    assert (
        mrkdwn.escape("<!channel> & <https://evil.example|click>") == "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    )
    assert mrkdwn.escape("&lt; already") == "&amp;lt; already", "an entity typed by a user is shown as typed"
    assert mrkdwn.escape(None) == "" and mrkdwn.escape("*bold* _it_") == "*bold* _it_"


def test_escape_cuts_without_splitting_an_entity() -> None:
    assert mrkdwn.escape("ab<c", 4) == "ab", "never half of &lt;"
    assert mrkdwn.escape("ab<c", 6) == "ab&lt;"
    assert mrkdwn.escape("<" * 1000, 2900) == "&lt;" * 725
    assert len(mrkdwn.escape("x" * 5000, 2900)) == 2900


def test_mentions_only_from_ids() -> None:
    assert mrkdwn.user("U0LAN0Z89") == "<@U0LAN0Z89>" and mrkdwn.user("W0ENTERPR1") == "<@W0ENTERPR1>"
    assert mrkdwn.user("!channel") == "@!channel"
    assert mrkdwn.user("U1> <!here") == "@U1&gt; &lt;!here"
    assert mrkdwn.channel("C0WARROOM") == "<#C0WARROOM>"
    assert mrkdwn.channel("!everyone") == "#!everyone"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://fake.pagerduty.com/incidents/P1", "<https://fake.pagerduty.com/incidents/P1|PD &lt;1&gt;>"),
        ("http://example.com/a?b=1&c=2", "<http://example.com/a?b=1&amp;c=2|PD &lt;1&gt;>"),
        ("javascript:alert(1)", "PD &lt;1&gt;"),
        ("https://evil.example|click", "PD &lt;1&gt;"),
        ("https://a.example/><!channel", "PD &lt;1&gt;"),
        ("https://a.example/ x", "PD &lt;1&gt;"),
        ("https://", "PD &lt;1&gt;"),
        ("slack://channel", "PD &lt;1&gt;"),
        (None, "PD &lt;1&gt;"),
    ],
)
def test_links_only_to_checked_urls(url: str | None, expected: str) -> None:
    assert mrkdwn.link(url, "PD <1>") == expected


def test_join_keeps_whole_parts() -> None:
    parts = ["<https://a.example|one>", "<https://b.example|two>"]
    assert mrkdwn.join(parts, " · ", 1000) == "<https://a.example|one> · <https://b.example|two>"
    assert mrkdwn.join(parts, " · ", 30) == "<https://a.example|one>", "a link that does not fit is left out whole"


def test_chat_text_decodes_only_slacks_three_escapes() -> None:
    # Slack sends a typed `<!channel> & "x"` as `&lt;!channel&gt; &amp; "x"`
    assert split_chat_text('note "&lt;!channel&gt; &amp; x"') == ["note", "<!channel> & x"]
    # one pass: a typed `&lt;` (sent as `&amp;lt;`) comes back as `&lt;`, not `<`
    assert split_chat_text('note "&amp;lt;b&amp;gt;"') == ["note", "&lt;b&gt;"]
    # other HTML entities are what the user typed (Slack never sends them for quotes)
    assert split_chat_text('note "&quot; &eacute; &#60;"') == ["note", "&quot; &eacute; &#60;"]
