"""Writes straight through the SQLite driver, for the ingest hot paths (webhook deliveries).

SQLAlchemy's per-statement work (cache key, execution context, result set-up, events) cost more than
the write itself there: webhook ingest spent ~277 us of CPU per delivery through Core and ~108 us this
way. What SQLAlchemy would do to each value is kept: every column's own bind processing (its type's
implementation for the engine's dialect: datetimes, JSON), so rows written here read back exactly as
rows the ORM wrote. Only the statement is compiled once and handed to the driver.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError


class DriverInsert:
    """One INSERT of a fixed set of columns, compiled once for `dialect`'s driver."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect, *, returning: str | None = None) -> None:
        self.columns = tuple(columns)
        self._processors: list[Callable[[Any], Any] | None] = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.columns
        ]
        placeholders = ", ".join("?" for _ in self.columns)
        self.sql = f"INSERT INTO {table.name} ({', '.join(self.columns)}) VALUES ({placeholders})"
        if returning is not None:
            self.sql += f" RETURNING {returning}"

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        bound = []
        for name, process in zip(self.columns, self._processors, strict=True):
            value = values[name]
            if process is not None:
                value = process(value)
            elif isinstance(value, str) and type(value) is not str:
                value = str(value)  # a StrEnum, bound as its value (as SQLAlchemy's String does)
            bound.append(value)
        return bound


@dataclass
class DriverWrite:
    """One SQLite transaction (BEGIN IMMEDIATE, under the store's write lock) on a driver connection."""

    connection: sqlite3.Connection
    dialect: Dialect
    inserts: dict[tuple[str, tuple[str, ...], str | None], DriverInsert]  # the store's, compiled once each
    enqueued: bool = False  # an outbox job was written: the commit wakes the workers

    def insert(self, table: Table, values: Mapping[str, Any], *, returning: str | None = None) -> Any:
        """Insert one row; the `returning` column's value when asked for."""
        key = (table.name, tuple(values), returning)
        statement = self.inserts.get(key)
        if statement is None:
            statement = self.inserts.setdefault(key, DriverInsert(table, tuple(values), self.dialect, returning=returning))
        parameters = statement.parameters(values)
        try:
            cursor = self.connection.execute(statement.sql, parameters)
        except sqlite3.IntegrityError as exc:  # as SQLAlchemy raises it, so callers need not know the driver
            raise IntegrityError(statement.sql, parameters, exc) from exc
        if returning is None:
            return None
        row = cursor.fetchone()
        return row[0] if row is not None else None
