"""What the Slack adapter knows of its own workspace: its team id (anyone from another team is a Slack
Connect guest, who may read but not change) and the members of the admin user groups.

Invariant: both are read from memory (or the database) on the ack path and refreshed only in the
background (`refresh`, on start and every 10 minutes): a request never waits on Slack for them.
A group whose members could not be read keeps the members last read.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy import delete
from sqlmodel import col, select

from bot.clock import utcnow
from bot.config import Settings
from bot.domain.permissions import GROUP_PREFIX
from bot.scheduler import Periodic
from bot.slack.models import SlackGroupMember
from bot.store import Store

log = logging.getLogger(__name__)

REFRESH_SECONDS = 600.0


class Workspace:
    def __init__(self, store: Store, settings: Settings, client: WebClient | None = None) -> None:
        self.store = store
        self.settings = settings
        self.client = client
        self._team: str | None = settings.slack_team_id
        self._members: dict[str, frozenset[str]] | None = None  # None: not loaded from the table yet
        self._lock = threading.Lock()

    # -- the ack path: memory and the database only -----------------------------------------------
    def team_id(self) -> str | None:
        return self._team

    def is_external(self, team: str | None) -> bool:
        """A user of another team. While our own team is not known yet nobody is taken for a guest."""
        ours = self._team
        return bool(team and ours and team != ours)

    def members(self, group: str) -> frozenset[str]:
        """The Slack user IDs of a user group, as last read (the Policy's `group_members`)."""
        with self._lock:
            if self._members is None:
                self._members = self._load()
            return self._members.get(group, frozenset())

    def admin_groups(self) -> list[str]:
        return [a.removeprefix(GROUP_PREFIX) for a in self.settings.admins if a.startswith(GROUP_PREFIX)]

    # -- the background ---------------------------------------------------------------------------
    def refresh(self) -> list[str]:
        """Learn our team id (auth.test) if unknown, and read every admin group's members."""
        done: list[str] = []
        if self.client is None:
            return done
        if self._team is None:
            try:
                self._team = str(self.client.auth_test()["team_id"])
                done.append(f"slack workspace is {self._team}")
            except (SlackApiError, SlackRequestError, OSError) as exc:
                log.warning("auth.test failed, Slack Connect guests cannot be told apart yet: %s", exc)
        for group in self.admin_groups():
            try:
                users = [str(u) for u in self.client.usergroups_users_list(usergroup=group)["users"]]
            except (SlackApiError, SlackRequestError, OSError) as exc:
                log.warning("members of user group %s not read (the last known stay): %s", group, exc)
                continue
            self._store_group(group, users)
            done.append(f"user group {group}: {len(users)} members")
        return done

    def periodic(self) -> Periodic:
        return Periodic("slack-workspace", self.refresh, REFRESH_SECONDS)

    def _store_group(self, group: str, users: list[str]) -> None:
        with self.store.transaction() as session:
            session.execute(delete(SlackGroupMember).where(col(SlackGroupMember.usergroup) == group))
            for user in sorted(set(users)):
                session.add(SlackGroupMember(usergroup=group, user_id=user, fetched_at=utcnow()))
        with self._lock:
            members = dict(self._members if self._members is not None else self._load())
            members[group] = frozenset(users)
            self._members = members

    def _load(self) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        with self.store.read() as session:
            for row in session.exec(select(SlackGroupMember)):
                found.setdefault(row.usergroup, set()).add(row.user_id)
        return {group: frozenset(users) for group, users in found.items()}


class Starter:
    """Runs the first refresh in a thread when `im serve` starts (never in a request's path)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="slack-workspace", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.workspace.refresh()
        except Exception:
            log.exception("first Slack workspace refresh failed; the scheduler tries again")

    def stop(self) -> None:
        pass
