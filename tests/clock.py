"""Times for tests, relative to now (never a literal date: the suite must pass on any day)."""

from datetime import UTC, datetime, timedelta

# Three hours ago, to the minute: after the factories' custody (a day ago), before now.
MORNING = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)


def at(minutes: float = 0) -> str:
    """ISO 8601 for MORNING plus `minutes` (keep under 180 to stay in the past)."""
    return (MORNING + timedelta(minutes=minutes)).isoformat()
