"""`im status` (and `im status --incident INC-n`, `--json`, `--utc`) read with the standard library alone.

A terminal `im status` on SQLite would spend most of its start importing SQLAlchemy, SQLModel, pydantic and
the app; this path reads the same rows with sqlite3 (read only, `mode=ro`), builds the JSON-shaped data
the full path's read models dump to, and prints it through the same formatter (commands/render_plain.py)
or as the same JSON. It answers only when it can be sure of giving exactly what the full path would,
and otherwise returns None so the full path runs (bot/main.py hands it to commands/cli.py):

- the command line is exactly `status` with `--json`, `--utc`, `--incident/-i INC-n` (no abbreviations,
  no repeats; anything else, a typo or a malformed ID included, is the full path's to parse and refuse);
- settings: only IM_DATABASE_URL and settings without validation (the Slack tokens and secrets,
  IM_SECRET_KEY*, IM_HOST) may be set, in the environment or in a `.env` of plain KEY=VALUE lines
  (every other setting must be validated as pydantic-settings does, and may change what status shows);
- the database: a `sqlite:///path` URL to an existing file whose `alembic_version` is HEAD_REVISION,
  no connector (its SLA mapping would change the clocks) and no PagerDuty link on the incidents shown;
- every value read has the type the full path's models require; an unknown incident is the full path's
  to report (stderr, exit 2), as is any sqlite3 error.

tests/test_fast_status.py runs both paths on the same stores and compares their output byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import as_utc, seconds_between, utcnow
from bot.domain.texts import NOT_CLOSED_TITLE, actor_fallback_name, dead_job_problem, waiting_problem
from bot.sla_clocks import (
    DEFAULT_ACK,
    DEFAULT_RESOLVE,
    DEFAULT_WARN_FRACTION,
    ClockTimes,
    clock_fields,
    per_kind,
    stops_since_reopen,
    tightest,
)
from bot.slack.links import thread_url
from bot.store_head import DEFAULT_DATABASE_URL, HEAD_REVISION

LIMIT = 500  # IncidentService.search's default: the most `status` lists
PAGE = 500  # describe_many's IN lists
NOT_CLOSED = ("open", "mitigated", "resolved")
# settings pydantic-settings takes as any string (no validator), besides IM_DATABASE_URL; IM_ACTOR is no setting
FREE = frozenset(
    {
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "im_secret_key",
        "im_secret_key_previous",
        "im_host",
        "im_actor",
    }
)
SETTING_PREFIXES = ("im_", "slack_", "pagerduty_")  # every setting's variable starts so (tests/test_fast_status.py checks it)
_REF = re.compile(r"[iI][nN][cC]-0*([1-9][0-9]{0,9})|0*([1-9][0-9]{0,9})")
_MAX_ID = 2**31 - 1
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_VALUE = re.compile(r"[^'\"\\$#`\s]*(?:[ \t]+[^'\"\\$#`\s]+)*")
_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?")


class Unsure(Exception):
    """Something this path cannot be sure to show as the full path would: the full path runs instead."""


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """What `im <argv>` prints for a status this path can answer, or None (the full path decides)."""
    try:
        request = _request(list(argv))
        if request is None:
            return None
        ref, as_json, utc = request
        environ = os.environ if environ is None else environ
        cwd = Path.cwd() if cwd is None else cwd
        with closing(_connect(_database_url(environ, cwd), cwd)) as conn:
            result = _read(conn, ref)
    except (Unsure, sqlite3.Error, OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if as_json:
        return json.dumps(result, indent=2)
    from commands.render_plain import incident_detail_text, incident_list_text, terminal_style

    style = terminal_style(sys.stdout, environ, utc=utc)
    if result["kind"] == "incident":
        return incident_detail_text(result["incident"], style)
    return incident_list_text(result["incidents"], result["delivery_problems"], style)


# -- the command line --------------------------------------------------------------------------
def _request(argv: list[str]) -> tuple[int | None, bool, bool] | None:
    """(incident number or None, --json, --utc) for exactly `status [--json] [--utc] [-i/--incident INC-n]`."""
    flags: set[str] = set()
    words = list(argv)
    while words and words[0] in ("--json", "--utc"):
        if words[0] in flags:
            return None
        flags.add(words.pop(0))
    if not words or words.pop(0) != "status":
        return None
    given: str | None = None
    while words:
        word = words.pop(0)
        if word in ("--json", "--utc") and word not in flags:
            flags.add(word)
        elif word in ("--incident", "-i") and given is None and words:
            given = words.pop(0)
        elif word.startswith("--incident=") and given is None:
            given = word.removeprefix("--incident=")
        else:
            return None
    number = None
    if given is not None:
        match = _REF.fullmatch(given)
        if match is None or int(match.group(1) or match.group(2)) > _MAX_ID:
            return None  # the full path says what is wrong with it
        number = int(match.group(1) or match.group(2))
    return number, "--json" in flags, "--utc" in flags


# -- settings ----------------------------------------------------------------------------------
def _database_url(environ: Mapping[str, str], cwd: Path) -> str:
    """IM_DATABASE_URL as pydantic-settings would find it (environment over `.env`, names in any case),
    when every setting found is one this path may ignore."""
    found: dict[str, str] = {}
    env_file = cwd / ".env"
    if env_file.exists():
        found.update(_dotenv(env_file))
    from_env: dict[str, str] = {}
    for key, value in environ.items():
        name = key.lower()
        if name.startswith(SETTING_PREFIXES) and name in from_env and from_env[name] != value:
            raise Unsure(f"{key} is set twice")  # which one pydantic-settings takes is its own business
        from_env[name] = value
    found.update(from_env)
    for name in found:
        if name.startswith(SETTING_PREFIXES) and name not in FREE and name != "im_database_url":
            raise Unsure(f"{name} is set")
    return found.get("im_database_url", DEFAULT_DATABASE_URL)


def _dotenv(path: Path) -> dict[str, str]:
    """A `.env` of plain lines only (KEY=VALUE, comments, blank lines): anything python-dotenv would
    read differently from the eye (quotes, escapes, interpolation, `export`, inline comments) is Unsure."""
    if not path.is_file():
        raise Unsure(".env is not a file")
    text = path.read_bytes().decode("utf-8")
    if "\r" in text or "\ufeff" in text:
        raise Unsure(".env line endings")
    found: dict[str, str] = {}
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, equals, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not _KEY.fullmatch(key) or not _PLAIN_VALUE.fullmatch(value):
            raise Unsure(".env line")
        if key.lower() in found:
            raise Unsure(".env sets a variable twice")
        found[key.lower()] = value
    return found


# -- the database ------------------------------------------------------------------------------
def _connect(url: str, cwd: Path) -> sqlite3.Connection:
    if not url.startswith("sqlite:///"):
        raise Unsure("not a plain sqlite:/// URL")  # PostgreSQL, a driver named, an in-memory database
    name = url.removeprefix("sqlite:///")
    if not name or name == ":memory:" or any(c in name for c in "?#%"):
        raise Unsure("a database path with options")
    path = cwd / name
    if not path.is_file():
        raise Unsure("no database yet: the full path creates it")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for every read below
        rows = conn.execute("select version_num from alembic_version").fetchall()
        if len(rows) != 1 or rows[0][0] != HEAD_REVISION:
            raise Unsure("the schema is not at the head: the full path migrates it")
        if conn.execute("select 1 from connector limit 1").fetchone() is not None:
            raise Unsure("a connector's SLA mapping may tighten the clocks")
    except BaseException:
        conn.close()
        raise
    return conn


_INCIDENT_COLUMNS = (
    "id, title, severity, status, services, description, fields, drill, resolution, declared_by, declared_at, "
    "acknowledged_at, mitigated_at, resolved_at, closed_at, reopened_at, owner_id"
)
# the full path's queries, word for word where SQLite's order of unordered rows could depend on the plan
_ROLES_ONE = (
    "SELECT incident_role.id, incident_role.incident_id, incident_role.role, incident_role.person_id, incident_role.at "
    "FROM incident_role WHERE incident_role.incident_id = ?"
)
_ROLES_MANY = (
    "SELECT incident_role.id, incident_role.incident_id, incident_role.role, incident_role.person_id, incident_role.at "
    "FROM incident_role WHERE incident_role.incident_id IN ({})"
)


def _read(conn: sqlite3.Connection, number: int | None) -> dict[str, Any]:
    if number is not None:
        rows = conn.execute(f"select {_INCIDENT_COLUMNS} from incident where id = ?", (number,)).fetchall()
        if not rows:
            raise Unsure("no such incident: the full path says so")
        return {"kind": "incident", "incident": _views(conn, rows, one=True)[0]}
    marks = ", ".join("?" * len(NOT_CLOSED))
    rows = conn.execute(
        f"select {_INCIDENT_COLUMNS} from incident where status in ({marks}) order by id desc limit ?", (*NOT_CLOSED, LIMIT)
    ).fetchall()
    views = _views(conn, rows, one=False)
    problems = [p for v in views for p in v["delivery_problems"]]
    older = (utcnow() - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    (waiting,) = conn.execute(
        "select count(*) from outbox_job where status in ('pending', 'running') and created_at < ?", (older,)
    ).fetchone()
    if waiting:
        problems.append(waiting_problem(_int(waiting)))
    return {"kind": "incidents", "title": NOT_CLOSED_TITLE, "incidents": views, "delivery_problems": problems}


def _views(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], *, one: bool) -> list[dict[str, Any]]:
    targets = tightest([per_kind(DEFAULT_ACK, DEFAULT_RESOLVE)])
    now = utcnow()
    names: dict[str, str] = {}
    views: list[dict[str, Any]] = []
    for start in range(0, len(rows), PAGE):
        page = rows[start : start + PAGE]
        ids = [_int(row[0]) for row in page]
        marks = ", ".join("?" * len(ids))
        if conn.execute(f"select 1 from pagerduty_link where incident_id in ({marks}) limit 1", ids).fetchone():
            raise Unsure("PagerDuty links: the PagerDuty adapter shows them")
        links = _links(conn, ids, marks)
        problems: dict[int, list[str]] = {}
        for incident_id, destination, kind, attempts, last_error in conn.execute(
            f"select incident_id, destination, kind, attempts, last_error from outbox_job "
            f"where status = 'dead' and incident_id in ({marks}) order by id",
            ids,
        ):
            text = dead_job_problem(_str(destination), _str(kind), _int(attempts), _opt_str(last_error))
            problems.setdefault(_int(incident_id), []).append(text)
        roles = _roles(conn, ids, marks, one=one)
        owners = _people(conn, {_int(row[16]) for row in page if row[16]})
        for row in page:
            views.append(_view(conn, row, names, links, problems, roles, owners, targets, now))
    return views


def _view(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    names: dict[str, str],
    links: dict[int, list[dict[str, Any]]],
    problems: dict[int, list[str]],
    roles: dict[int, dict[str, dict[str, Any]]],
    owners: dict[int, dict[str, Any]],
    targets: Mapping[str, Mapping[str, int]],
    now: datetime,
) -> dict[str, Any]:
    (number, title, severity, status, services, description, fields, drill, resolution, declared_by) = row[:10]
    declared_at, acknowledged_at, mitigated_at, resolved_at, closed_at, reopened_at = (_time(v) for v in row[10:16])
    owner_id = row[16]
    number, declared_by = _int(number), _str(declared_by)
    if declared_at is None:
        raise Unsure("an incident without a declaration time")
    service_list = json.loads(_str(services))
    field_map = json.loads(_str(fields)) or {}
    if not isinstance(service_list, list) or not all(isinstance(s, str) for s in service_list):
        raise Unsure("services")
    if not isinstance(field_map, dict) or not all(isinstance(v, str) for v in field_map.values()):
        raise Unsure("fields")
    if drill not in (0, 1):
        raise Unsure("drill")
    if declared_by not in names:
        names[declared_by] = _display_name(conn, declared_by)
    if reopened_at is None:
        times = ClockTimes(_str(severity), as_utc(declared_at), _utc(acknowledged_at), _utc(resolved_at or closed_at))
    else:
        steps = [
            (_data(data), _required_time(at))
            for data, at in conn.execute(
                "select data, at from timeline_event where incident_id = ? and kind = 'status' order by id", (number,)
            )
        ]
        acked, stopped = stops_since_reopen(steps)
        times = ClockTimes(_str(severity), as_utc(reopened_at), _utc(acked), _utc(stopped))
    owner = owners.get(_int(owner_id)) if owner_id else None
    return {
        "id": f"INC-{number}",
        "title": _str(title),
        "severity": _str(severity),
        "status": _str(status),
        "services": service_list,
        "description": _opt_str(description),
        "fields": field_map,
        "drill": bool(drill),
        "resolution": _opt_str(resolution),
        "declared_by": names[declared_by],
        "declared_at": _iso(declared_at),
        "acknowledged_at": _iso(acknowledged_at),
        "mitigated_at": _iso(mitigated_at),
        "resolved_at": _iso(resolved_at),
        "closed_at": _iso(closed_at),
        "owner": owner,
        "roles": roles.get(number, {}),
        "time_to_acknowledge_seconds": seconds_between(declared_at, acknowledged_at),
        "time_to_resolve_seconds": seconds_between(declared_at, resolved_at),
        "sla": [
            {key: _iso(value) if isinstance(value, datetime) else value for key, value in clock.items()}
            for clock in clock_fields(times, targets, DEFAULT_WARN_FRACTION, now)
        ],
        "links": links.get(number, []),
        "delivery_problems": problems.get(number, []),
    }


def _links(conn: sqlite3.Connection, ids: list[int], marks: str) -> dict[int, list[dict[str, Any]]]:
    """Each incident's links in the full path's order: its Slack thread, then its runbooks."""
    found: dict[int, list[dict[str, Any]]] = {}
    for incident_id, channel, ts in conn.execute(
        f"select incident_id, channel, ts from slack_thread where incident_id in ({marks})", ids
    ):
        if ts:
            link = {"system": "slack", "label": "Slack thread", "url": thread_url(_str(channel), _str(ts)), "status": None}
            found.setdefault(_int(incident_id), []).append(link)
    first: dict[int, Any] = {}
    for incident_id, data in conn.execute(
        f"select incident_id, data from timeline_event where incident_id in ({marks}) and kind = 'runbook' order by id", ids
    ):
        first.setdefault(_int(incident_id), data)
    for incident_id, data in first.items():
        items = _data(data).get("runbooks") or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise Unsure("runbook step")
        found.setdefault(incident_id, []).extend(
            {"system": "runbook", "label": str(i.get("label") or "Runbook"), "url": str(i.get("url")), "status": None}
            for i in items
        )
    return found


def _roles(conn: sqlite3.Connection, ids: list[int], marks: str, *, one: bool) -> dict[int, dict[str, dict[str, Any]]]:
    rows = conn.execute(_ROLES_ONE, ids).fetchall() if one else conn.execute(_ROLES_MANY.format(marks), ids).fetchall()
    persons = _people(conn, {_int(row[3]) for row in rows})
    found: dict[int, dict[str, dict[str, Any]]] = {}
    for _, incident_id, role, person_id, _at in rows:
        if _int(person_id) in persons:
            found.setdefault(_int(incident_id), {})[_str(role)] = persons[person_id]
    return found


def _people(conn: sqlite3.Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    found = {}
    for pid, name, email, slack_user_id, pagerduty_user_id in conn.execute(
        f"select id, name, email, slack_user_id, pagerduty_user_id from person where id in ({marks})", sorted(ids)
    ):
        found[_int(pid)] = {
            "name": _opt_str(name),
            "email": _opt_str(email),
            "slack_user_id": _opt_str(slack_user_id),
            "pagerduty_user_id": _opt_str(pagerduty_user_id),
        }
    return found


def _display_name(conn: sqlite3.Connection, actor: str) -> str:
    """bot.app.Im.display_name with the Slack adapter's provider (the only one that names actors)."""
    if actor.startswith("slack:"):
        row = conn.execute("select real_name, name from slack_user where user_id = ?", (actor.split(":", 1)[1],)).fetchone()
        if row is not None and (row[0] or row[1]):
            return _str(row[0] or row[1])
    return actor_fallback_name(actor)


# -- values as the full path's models take them -------------------------------------------------
def _str(value: object) -> str:
    if not isinstance(value, str):
        raise Unsure(f"{value!r} is not text")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unsure(f"{value!r} is not a whole number")
    return value


def _time(value: object) -> datetime | None:
    """A stored time as SQLModel's UTCDateTime reads it back: aware UTC (SQLite keeps it without an offset)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _STORED_TIME.fullmatch(value):
        raise Unsure(f"{value!r} is not a stored time")
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _required_time(value: object) -> datetime:
    found = _time(value)
    if found is None:
        raise Unsure("a step without a time")
    return found


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _iso(value: datetime | None) -> str | None:
    """A time as pydantic dumps it to JSON: ISO 8601, UTC written `Z`."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _data(value: object) -> dict[str, Any]:
    data = json.loads(_str(value))
    if not isinstance(data, dict):
        raise Unsure("step data")
    return data
