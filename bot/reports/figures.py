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
    Index,
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
from sqlalchemy.sql.elements import ColumnElement
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


class Figures:
    """The range is selected once into a temporary table of plain numbers (durations in seconds, trend
    bucket), so each aggregate below reads small rows instead of parsing timestamps again."""

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
        self.where = self._where()
        self.trend_unit, self.bounds = self._bounds()
        self.base = self._materialise(resolved_end)
        self.by_service = self._materialise_services()

    def seconds(self, start: Any, end: Any) -> ColumnElement[float]:
        if self.postgres:
            return sql_cast(func.round(sql_cast(func.extract("epoch", end - start), Numeric), 3), Float)
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)

    def _where(self) -> ColumnElement[bool]:
        c = INCIDENT.c
        clauses = [c.declared_at >= self.request.start, c.declared_at < self.request.end]
        if not self.request.include_drills:
            clauses.append(c.drill.is_(False))
        if self.request.severities:
            clauses.append(c.severity.in_(self.request.severities))
        if self.request.services:
            values = _services_of(self.conn.dialect.name)
            clauses.append(exists(select(values.c.value).where(values.c.value.in_(self.request.services))))
        return and_(*clauses)

    def _bounds(self) -> tuple[str, list[datetime]]:
        """Trend buckets: days (ranges up to 31 days) or weeks, from the start, on the zone's calendar."""
        start, end, tz = self.request.start, self.request.end, self.request.tz
        unit, step = ("day", timedelta(days=1)) if end - start <= DAILY_UP_TO else ("week", timedelta(days=7))
        local = start.astimezone(tz).replace(tzinfo=None)
        bounds: list[datetime] = []
        while not bounds or bounds[-1] < end:
            bounds.append((local + len(bounds) * step).replace(tzinfo=tz).astimezone(start.tzinfo))
        return unit, bounds

    def _materialise(self, resolved_end: Any) -> Table:
        c = INCIDENT.c
        buckets = len(self.bounds) - 1
        bucket = case(*[(c.declared_at < self.bounds[k + 1], k) for k in range(buckets)], else_=buckets - 1)
        minutes = self.seconds(c.declared_at, func.coalesce(resolved_end, self.as_of)) / 60.0
        base = self._temporary(
            "im_report",
            [("severity", String), ("status", String), ("services", JSON), ("reopened", Integer)]
            + [(name, Float) for name in ("tta", "ttr", "elapsed", "minutes")]
            + [("bucket", Integer)],
        )
        reopened = case((c.reopened_at.isnot(None), 1), else_=0)
        source = select(
            c.severity, c.status, c.services, reopened, self.tta_expr, self.ttr_expr, self.elapsed_expr, minutes, bucket
        )
        self.conn.execute(insert(base).from_select([col.name for col in base.columns], source.where(self.where)))
        return base

    def _temporary(self, prefix: str, columns: list[tuple[str, Any]]) -> Table:
        table = Table(
            f"{prefix}_{uuid.uuid4().hex[:12]}", MetaData(), *(Column(n, t) for n, t in columns), prefixes=["TEMPORARY"]
        )
        table.create(self.conn)
        return table

    def _materialise_services(self) -> Table:
        """One row per (incident, service) of the range, so the JSON of services is read once, not by
        every per-service aggregate."""
        table = self._temporary("im_report_svc", [("service", String)] + [(name, Float) for name in ("tta", "ttr", "minutes")])
        b = self.base.c
        services = _services_of(self.conn.dialect.name, b.services)
        source = select(services.c.value, b.tta, b.ttr, b.minutes).select_from(self.base.join(services, true()))
        self.conn.execute(insert(table).from_select([col.name for col in table.columns], source))
        return table

    # -- the report ------------------------------------------------------------------------
    def report(self, now: datetime) -> Report:
        b = self.base.c
        total, reopened = self.conn.execute(select(func.count(), func.coalesce(func.sum(b.reopened), 0))).one()
        svc = self.by_service.c.service
        overall = self.group_figures(literal("all"), self.base)
        by_severity = self.group_figures(b.severity, self.base)
        by_service = self.group_figures(svc, self.by_service)
        report = Report(
            start=self.request.start.astimezone(self.request.tz),
            end=self.request.end.astimezone(self.request.tz),
            tz=self.request.tz_name,
            filters=Filters(services=list(self.request.services), severities=list(self.request.severities)),
            generated_at=now,
            as_of=min(now, self.request.end),
            total=total,
            reopened=reopened,
            by_severity=[Count(key=g.key, count=g.incidents) for g in by_severity],
            by_service=[Count(key=g.key, count=g.incidents) for g in by_service],
            by_status=self.counts(b.status, self.base),
            minutes_by_service=[
                ServiceMinutes(service=key, minutes=round(float(minutes or 0), 1))
                for key, minutes in self.conn.execute(
                    select(svc, func.sum(self.by_service.c.minutes)).group_by(svc).order_by(svc)
                )
            ],
            overall=overall[0] if overall else _no_figures("all", 0),
            figures_by_severity=by_severity,
            figures_by_service=by_service,
            sla=self.sla(),
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

    def group_figures(self, key: Any, table: Table) -> list[GroupFigures]:
        counts = {c.key: c.count for c in self.counts(key, table)}
        mtta, mttr = self.stats(key, table)
        return [
            GroupFigures(
                key=k,
                incidents=n,
                mtta=mtta.get(k) or Stat(samples=0, reason=NO_SAMPLE["mtta"]),
                mttr=mttr.get(k) or Stat(samples=0, reason=NO_SAMPLE["mttr"]),
            )
            for k, n in counts.items()
        ]

    def stats(self, key: Any, from_: Table) -> tuple[dict[str, Stat], dict[str, Stat]]:
        """MTTA and MTTR per group (the table's tta and ttr columns): percentile_cont on PostgreSQL; on
        SQLite ranked by window functions (_ranked)."""
        b = from_.c
        if self.postgres:
            found: list[dict[str, Stat]] = []
            for value in (b.tta, b.ttr):
                query = (
                    select(
                        key,
                        func.count(),
                        func.avg(value),
                        func.percentile_cont(0.5).within_group(value),
                        func.percentile_cont(0.9).within_group(value),
                    )
                    .select_from(from_)
                    .where(value.isnot(None))
                    .group_by(key)
                )
                found.append(
                    {
                        k: Stat(samples=n, mean=_r(mean), median=_r(median), p90=_r(p90))
                        for k, n, mean, median, p90 in self.conn.execute(query)
                    }
                )
            return found[0], found[1]
        return self._ranked(key, from_, b.tta), self._ranked(key, from_, b.ttr)

    def _ranked(self, key: Any, table: Table, value: Any) -> dict[str, Stat]:
        """SQLite has no percentile_cont: an index on (group, value) of the temporary table makes each
        percentile a short walk in the database (ORDER BY value LIMIT 2 OFFSET rank), and only the two
        values around each percentile's rank come back, interpolated here as PostgreSQL does. (Ranking
        with window functions sorted and numbered every row of every group, several times slower.)"""
        grouped = isinstance(key, Column)
        counted = select(key, func.count(), func.avg(value)).select_from(table).where(value.isnot(None)).group_by(key)
        sizes = {k: (n, mean) for k, n, mean in self.conn.execute(counted)}
        Index(f"{table.name}_{value.name}_{'k' if grouped else 'all'}", *([key] if grouped else []), value).create(self.conn)
        found = {}
        for k, (n, mean) in sizes.items():
            rows = select(value).select_from(table).where(value.isnot(None)).order_by(value).limit(2)
            if grouped:
                rows = rows.where(key == k)
            at: dict[int, float] = {}
            for rank in sorted({int(p * (n - 1)) for p in PERCENTILES}):
                for offset, (v,) in enumerate(self.conn.execute(rows.offset(rank))):
                    at[rank + offset] = float(v)
            median, p90 = (_interpolate(at, n, p) for p in PERCENTILES)
            found[k] = Stat(samples=n, mean=_r(mean), median=_r(median), p90=_r(p90))
        return found

    def sla(self) -> list[SlaRow]:
        rows: list[SlaRow] = []
        b = self.base.c
        for kind, done in (("ack", b.tta), ("resolve", b.ttr)):
            per_severity = {sev: kinds[kind] for sev, kinds in self.request.targets.items() if kinds.get(kind)}
            if not per_severity:
                continue
            target = case(*[(b.severity == sev, seconds) for sev, seconds in per_severity.items()], else_=None)
            met = and_(done.isnot(None), done <= target)
            breached = or_(done > target, and_(done.is_(None), b.elapsed > target))
            still_open = and_(done.is_(None), b.elapsed <= target)
            query = (
                select(b.severity, *(func.sum(case((cond, 1), else_=0)) for cond in (met, breached, still_open)))
                .where(target.isnot(None))
                .group_by(b.severity)
            )
            found = {sev: (met_n, breached_n, open_n) for sev, met_n, breached_n, open_n in self.conn.execute(query)}
            for sev in sorted(per_severity):
                met_n, breached_n, open_n = found.get(sev, (0, 0, 0))
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
