"""Reports and postmortems asked for in Slack: acknowledged at once, computed by a worker, uploaded with
Slack's external upload flow (files.getUploadURLExternal, the bytes, files.completeUploadExternal)."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from pypdf import PdfReader
from sqlmodel import select

from bot.domain.models import OutboxJob
from bot.slack.uploads import KIND
from tests.harness import AppHarness

CHANNEL = "C0INCIDENT"


def mention(app: AppHarness, text: str, *, thread_ts: str, event_id: str) -> None:
    event = {
        "type": "app_mention",
        "user": "U0BOB0001",
        "text": f"<@U0BOT00001> {text}",
        "ts": f"{time.time():.6f}",
        "channel": CHANNEL,
        "event_ts": f"{time.time():.6f}",
        "thread_ts": thread_ts,
    }
    body = {"team_id": "T0001", "api_app_id": "A0APP00001", "event": event, "type": "event_callback", "event_id": event_id}
    assert app.slack.post(json.dumps(body).encode(), content_type="application/json").status_code == 200


def upload_jobs(app: AppHarness) -> list[OutboxJob]:
    with app.im.store.read() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.kind == KIND)))


def two_incidents(app: AppHarness) -> None:
    # as Slack sends what was typed: "Checkout <!channel> down"
    app.command('declare --sev SEV-2 --title "Checkout &lt;!channel&gt; down" --service web')
    app.command('declare --sev SEV-3 --title "Search slow" --service search')
    app.command("ack --incident INC-1")
    app.command('resolve --incident INC-1 "rolled back"')
    app.wait_idle()


def shared(app: AppHarness, channel: str, count: int = 1, thread_ts: str | None = None):  # type: ignore[no-untyped-def]
    assert app.fake.wait_for(lambda: len(app.fake.shared_files(channel, thread_ts)) >= count, timeout=20)
    app.wait_idle(20)
    return app.fake.shared_files(channel, thread_ts)


def test_report_pdf_is_uploaded_to_the_channel_with_its_headline(app: AppHarness) -> None:
    two_incidents(app)
    answer = app.command("report --since 7d --format pdf")
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral" and "being prepared" in body["text"]

    [(message, file)] = shared(app, CHANNEL)
    assert file.name.startswith("im-report-") and file.name.endswith(".pdf")
    assert file.content is not None and file.content.startswith(b"%PDF-")
    pdf = PdfReader(io.BytesIO(file.content))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert len(pdf.pages) >= 2 and "INC-1" in text and "MTTA" in text
    # the headline figures, in the message sharing the file
    assert message.text.startswith(":bar_chart: Incident report for <@U0LAN0Z89>: 2 incidents; MTTA ")
    assert "MTTR" in message.text and "ack SLA" in message.text and "resolve SLA" in message.text
    # the incidents channel did not have the bot in it: sharing a file takes membership, so it joined
    assert app.fake.calls_to("conversations.join")
    assert [(c.method, c.response.get("error")) for c in app.fake.calls if c.method.startswith("files.")] == [
        ("files.getUploadURLExternal", None),
        ("files.completeUploadExternal", "not_in_channel"),
        ("files.completeUploadExternal", None),
    ]
    assert app.fake.violations == []


def test_report_csv_from_a_direct_message_goes_to_the_askers_dm(app: AppHarness) -> None:
    two_incidents(app)
    answer = app.command("report --since 7d --format csv", channel_id="D0ALICEDM1", channel_name="directmessage")
    assert answer.status_code == 200 and "being prepared" in answer.json()["text"]

    [(message, file)] = shared(app, "D0LAN0Z89")  # the bot's DM with alice (conversations.open)
    assert file.name.endswith(".csv") and "2 incidents" in message.text
    assert file.content is not None
    rows = list(csv.reader(io.StringIO(file.content.decode())))
    cells = {cell for row in rows for cell in row}
    assert {"INC-1", "INC-2"} <= cells
    assert not app.fake.shared_files(CHANNEL)
    assert app.fake.violations == []


def test_postmortem_in_an_incident_thread_is_uploaded_into_that_thread(app: AppHarness) -> None:
    two_incidents(app)
    root = next(m for m in app.fake.messages(CHANNEL) if "INC-1" in m.text)
    mention(app, "postmortem", thread_ts=root.ts, event_id="Ev0PM1")

    [(message, file)] = shared(app, CHANNEL, thread_ts=root.ts)
    assert message.thread_ts == root.ts and file.name == "postmortem-INC-1.md"
    assert file.content is not None and file.content.decode().startswith("# Postmortem draft: INC-1 Checkout")
    # the title is people's text: inert in the message
    assert "&lt;!channel&gt;" in message.text and "<!channel>" not in message.text
    assert message.text.startswith(":memo: Postmortem draft for <@U0BOB0001>: ")
    complete = app.fake.calls_to("files.completeUploadExternal")[-1]
    assert complete.args["thread_ts"] == root.ts and complete.args["channel_id"] == CHANNEL

    # or named, from anywhere: a PDF of INC-2 in the channel
    app.command("postmortem INC-2 --format pdf")
    found = shared(app, CHANNEL, count=2)
    pdf_file = next(f for m, f in found if m.thread_ts is None)
    assert pdf_file.name == "postmortem-INC-2.pdf" and pdf_file.content is not None
    assert "Search slow" in "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf_file.content)).pages)
    assert app.fake.violations == []


def test_a_lost_complete_answer_does_not_share_the_file_twice(app: AppHarness) -> None:
    two_incidents(app)
    app.fake.add_member(CHANNEL, app.fake.bot_user_id)
    # the completion is carried out, then the connection drops before the answer
    app.fake.inject_faults(seed=1, rate=1.0, methods=("files.completeUploadExternal",), kinds=("drop",), times=1)
    app.command("report --since 7d --format csv")
    assert app.fake.wait_for(lambda: len(app.fake.faults) == 1, timeout=20)
    assert app.fake.wait_for(lambda: bool(app.fake.calls_to("files.info")), timeout=20)  # the retry looked first
    app.wait_idle(20)

    assert len(app.fake.shared_files(CHANNEL)) == 1
    assert len(app.fake.calls_to("files.getUploadURLExternal")) == 1  # computed and uploaded once
    assert len(app.fake.calls_to("files.completeUploadExternal")) == 1
    [job] = upload_jobs(app)
    assert job.status == "done" and job.attempts == 2
    assert app.fake.violations == []


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("report --since 7d --format docx", "invalid choice: 'docx'"),
        ("report --start 2026-08-31 --end 2026-08-01", "is not after the start"),
        ("report --since 7d --service nope", "unknown service(s): nope"),
        ("report --since 7d --output x.pdf", "--output is for the terminal"),
        ("postmortem INC-99", "INC-99"),
        ("postmortem", "is required"),
    ],
)
def test_bad_input_is_answered_at_once_and_nothing_is_queued(app: AppHarness, text: str, said: str) -> None:
    app.command('declare --sev SEV-3 --title "Search slow" --service search')
    answer = app.command(text)
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral" and ":warning:" in body["text"] and said in body["text"], body
    assert upload_jobs(app) == []
    assert not app.fake.calls_to("files.getUploadURLExternal")


def test_a_file_that_cannot_be_shared_is_dead_lettered_and_the_asker_told(app: AppHarness) -> None:
    two_incidents(app)
    app.fake.add_channel("G0PRIVATE1", "secret-ops", members=["U0LAN0Z89"])
    app.fake.channels["G0PRIVATE1"].is_private = True  # the bot cannot join it: only an invitation helps
    answer = app.command("report --since 7d --format csv", channel_id="G0PRIVATE1", response_url=app.fake.response_url())
    assert "being prepared" in answer.json()["text"]
    assert app.fake.wait_for(lambda: bool(app.fake.responses), timeout=20)
    [told] = app.fake.responses
    assert told["response_type"] == "ephemeral" and "invite the bot to the channel" in told["text"]
    [job] = upload_jobs(app)
    assert job.status == "dead" and "invite the bot" in (job.last_error or "")
    assert not app.fake.shared_files("G0PRIVATE1")
    assert app.fake.violations == []
