"""Admin: list the queue's schedules, change one or create one."""

from lib.endpoints.admin_schedules import list_schedules, save_schedule
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The schedules the worker evaluates on every invocation, for the dashboard and operators."""

    routes = Routes(GET=list_schedules, POST=save_schedule)
