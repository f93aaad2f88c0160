"""Every table, imported in one place so migrations and `create_all` see the whole schema."""

from sqlmodel import SQLModel

from bot import log_store as _logs  # noqa: F401
from bot import pacing as _pacing  # noqa: F401
from bot.connectors import models as _connectors  # noqa: F401
from bot.domain import alert_models as _alerts  # noqa: F401
from bot.domain import gameday as _gameday  # noqa: F401
from bot.domain import models as _domain  # noqa: F401
from bot.domain import people as _people  # noqa: F401
from bot.domain import runbooks as _runbooks  # noqa: F401
from bot.slack import models as _slack  # noqa: F401
from integrations.pagerduty import tables as _pagerduty  # noqa: F401

metadata = SQLModel.metadata
