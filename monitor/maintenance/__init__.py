"""Planned work: maintenance windows, when they happen, and what they change for customers.

Pure, like ``monitor.incidents``: windows and moments in, answers out. The modules, each over
the ones below it:

- ``rules``: failures inside a window tell no customer until they outlast it (``covered``,
  ``customer_view``, ``grace_of``); the notice before, the note after, the word that it is
  cancelled (``notice_due``, ``over_due``, ``announced_to_subscriber``)
- ``public``: what customers may see of planned work (``public_windows``: the status page's)
- ``schedule``: every window there is, by system (``Schedule``)
- ``recurrence``: a window's occurrences, across DST at the same local time
- ``windows``: ``Window`` (from what a file or the API wrote: ``window_of``), ``Occurrence``
  (as told: ``recorded_occurrence``), ``UnusableWindow``, ``NoticeKind``

The files' windows come from ``monitor.config`` (``checks/maintenance/*.yaml``, monitor.yaml's
``maintenance:``), the API's from the store; the notifier applies the rules (``notify.planned``
tells the notices).
"""

from monitor.maintenance.public import PublicWindow, public_windows
from monitor.maintenance.rules import (
    Over,
    announced_to_subscriber,
    covered,
    customer_view,
    down_systems,
    grace_of,
    in_maintenance,
    lead_of,
    notice_due,
    over_due,
)
from monitor.maintenance.schedule import Schedule
from monitor.maintenance.windows import (
    API_SOURCE,
    NoticeKind,
    Occurrence,
    UnusableWindow,
    Window,
    config_windows,
    file_window,
    recorded_occurrence,
    window_of,
    windows_digest,
)

__all__ = [
    "API_SOURCE",
    "NoticeKind",
    "Occurrence",
    "Over",
    "PublicWindow",
    "Schedule",
    "UnusableWindow",
    "Window",
    "announced_to_subscriber",
    "config_windows",
    "covered",
    "customer_view",
    "down_systems",
    "file_window",
    "grace_of",
    "in_maintenance",
    "lead_of",
    "notice_due",
    "over_due",
    "public_windows",
    "recorded_occurrence",
    "window_of",
    "windows_digest",
]
