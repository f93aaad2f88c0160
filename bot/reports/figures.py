"""Report figures, computed by the database with SQLAlchemy Core aggregate queries.

Counts, sums, means and SLA outcomes are GROUP BY queries on both databases; medians and p90 are
`percentile_cont` on PostgreSQL and, on SQLite (which has none), are read from one sorted column of
plain floats per group, never from ORM objects. Only the listed incidents (at most `max_listed`) are
read as rows. Durations are seconds rounded to the millisecond in SQL, so both databases agree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.sql.selectable import FromClause
from sqlmodel import SQLModel

from bot.app import Im
from bot.clock import utcnow
from bot.domain.models import Incident, Status
from bot.domain.views import ExternalLink
from bot.reports.facts import gather
from bot.reports.model import Count, Filters, GroupFigures, IncidentRow, Report, ServiceMinutes, SlaRow, Stat, TrendPoint
from bot.reports.targets import Targets

INCIDENT: Table = SQLModel.metadata.tables[str(Incident.__tablename__)]
DONE_STATUSES = (Status.RESOLVED.value, Status.CLOSED.value)
DAILY_UP_TO = timedelta(days=31)  # longer ranges trend by week
PERCENTILES = (0.5, 0.9)
SCAN_FROM = 0.1  # SQLite reads the whole table, not the declared_at index, for a range past this share
NO_SAMPLE = {"mtta": "no incident acknowledged", "mttr": "no incident resolved"}


@dataclass(frozen=True)
class ReportRequest:
    start: datetime  # aware
    end: datetime  # aware, excluded
    tz: tzinfo
    tz_name: str
    services: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    targets: Targets = field(default_factory=dict)
    max_listed: int | None = 1000  # None: every incident
    include_external: bool = False
    include_drills: bool = False  # game days (`im gameday`) are left out unless asked for


def known_services(conn: Connection) -> set[str]:
    values = _services_of(conn.dialect.name)
    return {row[0] for row in conn.execute(select(values.c.value).distinct().select_from(INCIDENT.join(values, true())))}


def make_report(im: Im, request: ReportRequest, now: datetime | None = None) -> Report:
    now = now or utcnow()
    as_of = min(now, request.end)
    with im.store.read_engine.connect() as conn:
        report = Figures(conn, request, as_of).report(now)
        listed_ids = [int(r.ref.removeprefix("INC-")) for r in report.incidents]
    _add_links(im, report, listed_ids)
    if request.include_external:
        wanted = {int(r.ref.removeprefix("INC-")): r.ref for r in report.incidents}
        report.external = gather(im.report_facts, wanted, request.start, request.end)
    return report


def _add_links(im: Im, report: Report, ids: list[int]) -> None:
    """Links of the listed incidents, a few queries per adapter (bulk providers), never one per incident."""
    if not ids:
        return
    found: dict[int, list[ExternalLink]] = {}
    with im.store.read() as session:
        for start in range(0, len(ids), 500):  # bounded IN lists
            for provider in im.bulk_link_providers:
                for number, links in provider(session, ids[start : start + 500]).items():
                    found.setdefault(number, []).extend(links)
    for row, number in zip(report.incidents, ids, strict=True):
        row.links = found.get(number, [])


def _services_of(dialect: str, column: Any = None) -> Any:
    """The services of each incident as rows of a table-valued function (`value`), joined ON true."""
    column = INCIDENT.c.services if column is None else column
    if dialect == "postgresql":
        return func.json_array_elements_text(column).table_valued("value").alias("svc")
    return func.json_each(column).table_valued("value").alias("svc")


@dataclass
class Aggregate:
    """One group of an aggregate pass: its incidents and, for the tta and ttr columns, the samples, mean,
    median and p90 (on SQLite the percentiles are filled in afterwards); `extra` columns after those."""

    key: str
    incidents: int
    values: dict[str, list[Any]]  # "tta" / "ttr" -> [samples, mean, median, p90]
    extra: tuple[Any, ...] = ()

    def figures(self) -> GroupFigures:
        found = {}
        for value, name in (("tta", "mtta"), ("ttr", "mttr")):
            n, mean, median, p90 = self.values[value]
            found[name] = (
                Stat(samples=n, mean=_r(mean), median=_r(median), p90=_r(p90)) if n else Stat(samples=0, reason=NO_SAMPLE[name])
            )
        return GroupFigures(key=self.key, incidents=self.incidents, mtta=found["mtta"], mttr=found["mttr"])


class Figures:
    """The range is selected once into a temporary table of plain numbers (durations in seconds, trend
    bucket), so each aggregate below reads small rows instead of parsing timestamps again: one pass per
    grouping (all, severity, service) gives counts, means, SLA outcomes and, on PostgreSQL, percentiles."""

    def __init__(self, conn: Connection, request: ReportRequest, as_of: datetime) -> None:
        self.conn = conn
        self.request = request
        self.postgres = conn.dialect.name == "postgresql"
        c = INCIDENT.c
        self.as_of = literal(as_of, type_=c.declared_at.type)
        resolved_end = case((c.status.in_(DONE_STATUSES), c.resolved_at), else_=None)
        self.tta_expr = self.seconds(c.declared_at, c.acknowledged_at)
        self.ttr_expr = self.seconds(c.declared_at, resolved_end)
        self.elapsed_expr = self.seconds(c.declared_at, self.as_of)
        self.where = self._where(c.declared_at)  # the listed incidents: in declared_at order, from its index
        self.where_all = self.where  # every incident of the range, once, into the temporary table
        if not self.postgres and self._most_of_the_store():
            # SQLite's documented way to keep a term off an index (unary +): read the table instead
            self.where_all = self._where(UnaryExpression(c.declared_at, operator=custom_op("+"), type_=c.declared_at.type))
        self.trend_unit, self.bounds = self._bounds()
        self.base = self._materialise()
        self.by_service = self._materialise_services()

    def seconds(self, start: Any, end: Any) -> ColumnElement[Any]:
        if self.postgres:
            return sql_cast(func.round(sql_cast(func.extract("epoch", end - start), Numeric), 3), Float)
        # whole milliseconds, then seconds: the value round(x, 3) gives (julianday keeps milliseconds), but
        # SQLite's round() to digits goes through printf and back, several times slower per row
        return func.round((func.julianday(end) - func.julianday(start)) * 86400000.0) / 1000.0

    def _where(self, declared: ColumnElement[datetime]) -> ColumnElement[bool]:
        c = INCIDENT.c
        clauses = [declared >= self.request.start, declared < self.request.end]
        if not self.request.include_drills:
            clauses.append(c.drill.is_(False))
        if self.request.severities:
            clauses.append(c.severity.in_(self.request.severities))
        if self.request.services:
            values = _services_of(self.conn.dialect.name)
            clauses.append(exists(select(values.c.value).where(values.c.value.in_(self.request.services))))
        return and_(*clauses)

    def _most_of_the_store(self) -> bool:
        """Whether the range covers more than SCAN_FROM of the span of declarations (two index probes).
        SQLite keeps no statistics unless ANALYZE is run, so it walks the declared_at index for any range,
        a random read of the table per incident: for a year of a store a bit older, several times slower
        than reading the whole table in order."""
        c = INCIDENT.c
        # one aggregate per query: SQLite reads a min() or max() alone from the index's end, together it scans
        first, last = self.conn.execute(
            select(select(func.min(c.declared_at)).scalar_subquery(), select(func.max(c.declared_at)).scalar_subquery())
        ).one()
        if first is None or last <= first:
            return False
        covered = min(last, self.request.end) - max(first, self.request.start)
        return covered / (last - first) > SCAN_FROM

    def _bounds(self) -> tuple[str, list[datetime]]:
        """Trend buckets: days (ranges up to 31 days) or weeks, from the start, on the zone's calendar."""
        start, end, tz = self.request.start, self.request.end, self.request.tz
        unit, step = ("day", timedelta(days=1)) if end - start <= DAILY_UP_TO else ("week", timedelta(days=7))
        local = start.astimezone(tz).replace(tzinfo=None)
        bounds: list[datetime] = []
        while not bounds or bounds[-1] < end:
            bounds.append((local + len(bounds) * step).replace(tzinfo=tz).astimezone(start.tzinfo))
        return unit, bounds

    def _bucket(self, low: int, high: int) -> Any:
        """The trend bucket of declared_at among buckets low..high: a binary search of the bounds (a few
        comparisons per incident, not one per bucket); the last bucket takes what is past its end."""
        if low == high:
            return literal(low)
        middle = (low + high) // 2
        return case(
            (INCIDENT.c.declared_at < self.bounds[middle + 1], self._bucket(low, middle)), else_=self._bucket(middle + 1, high)
        )

    def _materialise(self) -> Table:
        c = INCIDENT.c
        base = self._temporary(
            "im_report",
            [("severity", String), ("status", String), ("services", JSON), ("reopened", Integer)]
            + [(name, Float) for name in ("tta", "ttr", "elapsed")]
            + [("bucket", Integer)],
        )
        reopened = case((c.reopened_at.isnot(None), 1), else_=0)
        bucket = self._bucket(0, len(self.bounds) - 2)
        source = select(c.severity, c.status, c.services, reopened, self.tta_expr, self.ttr_expr, self.elapsed_expr, bucket)
        self.conn.execute(insert(base).from_select([col.name for col in base.columns], source.where(self.where_all)))
        return base

    def _temporary(self, prefix: str, columns: list[tuple[str, Any]], key: str | None = None) -> Table:
        table = Table(
            f"{prefix}_{uuid.uuid4().hex[:12]}",
            MetaData(),
            *(Column(n, t, primary_key=n == key) for n, t in columns),
            prefixes=["TEMPORARY"],
        )
        table.create(self.conn)
        return table

    def _materialise_services(self) -> Table:
        """One row per (incident, service) of the range, so the JSON of services is read once, not by
        every per-service aggregate."""
        table = self._temporary("im_report_svc", [("service", String)] + [(name, Float) for name in ("tta", "ttr", "minutes")])
        b = self.base.c
        services = _services_of(self.conn.dialect.name, b.services)
        minutes = func.coalesce(b.ttr, b.elapsed) / 60.0  # declared to resolved, or to as_of while not resolved
        source = select(services.c.value, b.tta, b.ttr, minutes).select_from(self.base.join(services, true()))
        self.conn.execute(insert(table).from_select([col.name for col in table.columns], source))
        return table

    # -- the report ------------------------------------------------------------------------
    def report(self, now: datetime) -> Report:
        b, s = self.base.c, self.by_service.c
        sla_targets, sla_sums = self._sla_sums()
        groups = {
            "all": self.aggregate(self.base, None, func.coalesce(func.sum(b.reopened), 0)),
            "severity": self.aggregate(self.base, b.severity, *sla_sums),
            "service": self.aggregate(self.by_service, s.service, func.sum(s.minutes)),
        }
        if not self.postgres:
            self._sqlite_percentiles(groups)
        overall = groups["all"][0]
        total = overall.incidents
        by_severity = [g.figures() for g in groups["severity"]]
        by_service = [g.figures() for g in groups["service"]]
        report = Report(
            start=self.request.start.astimezone(self.request.tz),
            end=self.request.end.astimezone(self.request.tz),
            tz=self.request.tz_name,
            filters=Filters(services=list(self.request.services), severities=list(self.request.severities)),
            generated_at=now,
            as_of=min(now, self.request.end),
            total=total,
            reopened=overall.extra[0],
            by_severity=[Count(key=g.key, count=g.incidents) for g in by_severity],
            by_service=[Count(key=g.key, count=g.incidents) for g in by_service],
            by_status=self.counts(b.status, self.base),
            minutes_by_service=[
                ServiceMinutes(service=g.key, minutes=round(float(g.extra[0] or 0), 1)) for g in groups["service"]
            ],
            overall=overall.figures() if total else _no_figures("all", 0),
            figures_by_severity=by_severity,
            figures_by_service=by_service,
            sla=self.sla(sla_targets, {g.key: g.extra for g in groups["severity"]}),
        )
        report.trend_unit, report.trend = self.trend_unit, self.trend()
        report.incidents = self.listed()
        if self.request.max_listed is not None and total > self.request.max_listed:
            report.incidents_listed_limit = self.request.max_listed
        if total == 0:
            report.notes.append("No incident was declared in this range with these filters.")
        if not self.request.targets:
            report.notes.append("No SLA targets are set (IM_SLA_ACK, IM_SLA_RESOLVE or a connector's SLA mapping).")
        self.by_service.drop(self.conn)
        self.base.drop(self.conn)
        return report

    def counts(self, key: Any, from_: FromClause) -> list[Count]:
        query = select(key, func.count()).select_from(from_).group_by(key).order_by(key)
        return [Count(key=k, count=n) for k, n in self.conn.execute(query)]

    def aggregate(self, table: Table, key: Any, *extra: Any) -> list[Aggregate]:
        """One pass over `table`, grouped by `key` (None: one group, "all", even of no row), in key order:
        incidents, then samples and mean of tta and of ttr (with percentile_cont on PostgreSQL), then `extra`."""
        columns: list[Any] = [func.count()]
        for value in (table.c.tta, table.c.ttr):
            columns += [func.count(value), func.avg(value)]
            if self.postgres:
                columns += [func.percentile_cont(p).within_group(value) for p in PERCENTILES]
        query = select(*columns, *extra).select_from(table)
        if key is not None:
            query = query.add_columns(key).group_by(key).order_by(key)
        width = 4 if self.postgres else 2
        found = []
        for row in self.conn.execute(query):
            values = {
                name: [*row[1 + k * width : 1 + (k + 1) * width], *([] if self.postgres else [None, None])]
                for k, name in enumerate(("tta", "ttr"))
            }
            end = 1 + 2 * width
            key_value = "all" if key is None else row[-1]
            found.append(Aggregate(key=key_value, incidents=row[0], values=values, extra=tuple(row[end : end + len(extra)])))
        return found

    def _sqlite_percentiles(self, groups: dict[str, list[Aggregate]]) -> None:
        """SQLite has no percentile_cont. For each of tta and ttr, the samples of every group (all, each
        severity, each service) are copied into a temporary table in (grouping, key, value) order, so its
        row ids are the ranks: each group is a run of consecutive ids whose length its aggregate counted,
        and a percentile is a lookup of the one or two ids around its rank, all of them in one query,
        interpolated here as PostgreSQL does. Sorting is the cost (walking an index of each group with
        LIMIT OFFSET, or numbering rows with window functions, cost more), so it is done twice per value,
        not three times: all the samples sorted by value, then each severity's run copied from that one
        in id order (a severity has a few values, each a read of the sorted run, not another sort), and
        the services' samples sorted by (service, value)."""
        order = list(groups)  # the grouping's number in the sorted table: all, severity, service
        b, svc = self.base.c, self.by_service.c
        for value in ("tta", "ttr"):
            table = self._temporary(
                f"im_report_{value}",
                [("pos", Integer), ("grouping", Integer), ("key", String), ("severity", String), ("v", Float)],
                key="pos",
            )
            t, column = table.c, b[value]
            everything = select(literal(order.index("all")), literal("all"), b.severity, column).where(column.isnot(None))
            self.conn.execute(insert(table).from_select(["grouping", "key", "severity", "v"], everything.order_by(column)))
            samples = groups["all"][0].values[value][0]  # the run just written: ids 1..samples
            for group in sorted(groups["severity"], key=lambda g: g.key.encode()):  # as _read_ranks expects them
                run = (
                    select(literal(order.index("severity")), t.severity, t.v)
                    .where(t.pos <= samples, t.severity == group.key)
                    .order_by(t.pos)
                )
                self.conn.execute(insert(table).from_select(["grouping", "key", "v"], run))
            column = svc[value]
            services = select(literal(order.index("service")), svc.service, column).where(column.isnot(None))
            self.conn.execute(insert(table).from_select(["grouping", "key", "v"], services.order_by(svc.service, column)))
            self._read_ranks(table, value, order, groups)
            table.drop(self.conn)

    def _read_ranks(self, table: Table, value: str, order: list[str], groups: dict[str, list[Aggregate]]) -> None:
        wanted: dict[int, tuple[int, str]] = {}  # row id -> (grouping number, key), to check the runs line up
        runs: list[tuple[Aggregate, int]] = []
        first = 1
        for number, grouping in enumerate(order):
            for group in sorted(groups[grouping], key=lambda g: g.key.encode()):  # BINARY collation: UTF-8 bytes
                n = group.values[value][0]
                if n:
                    for rank in {r for p in PERCENTILES for r in (int(p * (n - 1)), int(p * (n - 1)) + 1) if r < n}:
                        wanted[first + rank] = (number, group.key)
                    runs.append((group, first))
                first += n
        found: dict[int, float] = {}
        for start in range(0, len(wanted), 500):  # bounded IN lists
            ids = sorted(wanted)[start : start + 500]
            query = select(table.c.pos, table.c.grouping, table.c.key, table.c.v).where(table.c.pos.in_(ids))
            for pos, number, key, v in self.conn.execute(query):
                if wanted[pos] != (number, key):
                    raise RuntimeError(f"report percentiles: row {pos} is {number}/{key}, expected {wanted[pos]}")
                found[pos] = float(v)
        for group, first in runs:
            n = group.values[value][0]
            at = {pos - first: v for pos, v in found.items() if first <= pos < first + n}
            group.values[value][2:] = [_interpolate(at, n, p) for p in PERCENTILES]

    def _sla_sums(self) -> tuple[list[tuple[str, dict[str, int]]], list[Any]]:
        """The SLA outcomes as sums for the per-severity pass: for each kind with a target (ack, resolve),
        met, breached and still open."""
        b = self.base.c
        kinds, sums = [], []
        for kind, done in (("ack", b.tta), ("resolve", b.ttr)):
            per_severity = {sev: kinds_[kind] for sev, kinds_ in self.request.targets.items() if kinds_.get(kind)}
            if not per_severity:
                continue
            target = case(*[(b.severity == sev, seconds) for sev, seconds in per_severity.items()], else_=None)
            met = and_(done.isnot(None), done <= target)
            breached = or_(done > target, and_(done.is_(None), b.elapsed > target))
            still_open = and_(done.is_(None), b.elapsed <= target)
            kinds.append((kind, per_severity))
            sums += [func.sum(case((cond, 1), else_=0)) for cond in (met, breached, still_open)]
        return kinds, sums

    def sla(self, kinds: list[tuple[str, dict[str, int]]], sums: dict[str, tuple[Any, ...]]) -> list[SlaRow]:
        rows: list[SlaRow] = []
        for k, (kind, per_severity) in enumerate(kinds):
            for sev in sorted(per_severity):
                met_n, breached_n, open_n = sums[sev][3 * k : 3 * k + 3] if sev in sums else (0, 0, 0)
                rows.append(
                    SlaRow(severity=sev, kind=kind, target_seconds=per_severity[sev], met=met_n, breached=breached_n, open=open_n)
                )
        return rows

    def trend(self) -> list[TrendPoint]:
        b = self.base.c
        query = select(b.bucket, func.count(), func.avg(b.tta), func.avg(b.ttr)).group_by(b.bucket)
        found = {k: (n, a, r) for k, n, a, r in self.conn.execute(query)}
        points = []
        for k in range(len(self.bounds) - 1):
            n, mtta, mttr = found.get(k, (0, None, None))
            first = self.bounds[k].astimezone(self.request.tz)
            label = first.strftime("%Y-%m-%d") if self.trend_unit == "day" else f"week of {first.strftime('%Y-%m-%d')}"
            points.append(TrendPoint(start=first, label=label, incidents=n, mtta_mean=_r(mtta), mttr_mean=_r(mttr)))
        return points

    def listed(self) -> list[IncidentRow]:
        c = INCIDENT.c
        query = (
            select(
                c.id, c.title, c.severity, c.status, c.services, c.declared_at, c.acknowledged_at, c.resolved_at, c.reopened_at
            )
            .add_columns(self.tta_expr, self.ttr_expr, self.elapsed_expr)
            .where(self.where)
            .order_by(c.declared_at, c.id)
        )
        if self.request.max_listed is not None:
            query = query.limit(self.request.max_listed)
        rows = []
        for number, title, sev, status, services, declared, acked, resolved, reopened, tta, ttr, elapsed in self.conn.execute(
            query
        ):
            targets = self.request.targets.get(sev, {})
            rows.append(
                IncidentRow(
                    ref=f"INC-{number}",
                    title=title,
                    severity=sev,
                    status=status,
                    services=list(services),
                    declared_at=declared,
                    acknowledged_at=acked,
                    resolved_at=resolved if status in DONE_STATUSES else None,
                    reopened=reopened is not None,
                    tta_seconds=_r(tta),
                    ttr_seconds=_r(ttr),
                    ack_sla=sla_outcome(_r(tta), float(elapsed), targets.get("ack")),
                    resolve_sla=sla_outcome(_r(ttr), float(elapsed), targets.get("resolve")),
                )
            )
        return rows


def sla_outcome(done_seconds: float | None, elapsed_seconds: float, target: int | None) -> str | None:
    """The rule of the SLA query above, for one incident: exactly the target is met."""
    if target is None:
        return None
    if done_seconds is not None:
        return "met" if done_seconds <= target else "breached"
    return "breached" if elapsed_seconds > target else "open"


def _interpolate(at: dict[int, float], n: int, p: float) -> float:
    """percentile_cont from the values at ranks floor(p * (n - 1)) and the next (zero-based)."""
    position = p * (n - 1)
    low = int(position)
    upper = at.get(low + 1, at[low])
    return at[low] + (upper - at[low]) * (position - low)


def _r(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _no_figures(key: str, incidents: int) -> GroupFigures:
    return GroupFigures(
        key=key,
        incidents=incidents,
        mtta=Stat(samples=0, reason=NO_SAMPLE["mtta"]),
        mttr=Stat(samples=0, reason=NO_SAMPLE["mttr"]),
    )
