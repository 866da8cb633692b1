"""Times and durations as a person reads them: in their time zone, in the language of the
message, through Babel (CLDR's words, formats and plural rules) and zoneinfo.

``Speaker(language, zone, say_zone)`` words moments relative to now ("5:01 PM today",
"heute um 17:01 Uhr") and durations ("1 hour 20 minutes", "1 Stunde und 20 Minuten"). A fan-out
writes the same few moments and durations into thousands of messages: each is worded once, and
remembered per (zone, language, moment, now's minute) and per (language, seconds).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.lists import format_list
from babel.units import format_unit


@dataclass(frozen=True, slots=True)
class _Shape:
    """Where the day and the time go in a sentence's moment: ``{day}`` is a relative day
    (today), ``{date}`` a weekday and date; ``{time}`` the clock time (and zone, if said)."""

    relative: str
    dated: str
    clock: str = "{time}"


# English keeps the time first, so that "stopped working at {{ incident.started_at }}" reads
# "at 5:01 PM today"; German says the day first and "Uhr" after the time, as Germans write it.
# Other languages use CLDR's own "{day} at {time}" pattern.
_SHAPES = {
    "en": _Shape("{time} {day}", "{time} on {date}"),
    "de": _Shape("{day} um {time}", "am {date} um {time}", "{time} Uhr"),
}


@dataclass(frozen=True, slots=True)
class _SpanShape:
    """How a language says from when to when (planned work): within one day (``{day}``, a
    relative day or ``dated_one`` of the date) and across two (``{day}``, ``{end_day}``,
    each a relative day or ``dated_two``)."""

    one_day: str
    two_days: str
    dated_one: str
    dated_two: str


_SPAN_SHAPES = {
    "en": _SpanShape(
        "{day} from {start} to {end}",
        "from {start} {day} to {end} {end_day}",
        "on {date}",
        "on {date}",
    ),
    "de": _SpanShape(
        "{day} von {start} bis {end}",
        "von {day} {start} bis {end_day} {end}",
        "am {date},",
        "{date},",
    ),
}
_SPAN_DAYS = (-1, 0, 1)  # said as yesterday, today, tomorrow; the others by their date


class Speaker:
    """Says moments and durations in ``language`` (a BCP 47 tag), at the clock of ``zone``;
    with ``say_zone``, each time is followed by the zone's abbreviation ("2:05 PM UTC"), for
    people whose own zone the monitor does not know. ``next_update`` is when the next word
    comes at the latest, ``update_every`` from now ("within 24 hours")."""

    def __init__(
        self, language: str, zone: ZoneInfo, *, say_zone: bool, update_every: float = 86400.0
    ) -> None:
        self.language = language
        self.next_update = say_within(language, update_every)
        self._locale = Locale.parse(language, sep="-")
        self._zone = zone
        self._say_zone = say_zone
        self._shape = _SHAPES.get(self._locale.language) or _cldr_shape(self._locale)
        # Relative day names from CLDR ("today", "heute"), which Babel has no function for.
        self._days: dict[int, str] = dict(self._locale._data["date_fields"]["day"]["relative"])
        self._said: dict[tuple[float, float], str] = {}
        # CLDR's weekday-and-date patterns (this year's without the year), the weekday written
        # out: "Tuesday, March 4", "Dienstag, 4. März".
        self._dated = {
            this_year: _full_weekday(str(self._locale.datetime_skeletons[skeleton]))
            for this_year, skeleton in ((True, "MMMMEd"), (False, "yMMMMEd"))
        }

    def when(self, at: float, now: float) -> str:
        """``at`` as a moment relative to ``now``: today, yesterday, or the weekday and date
        (with the year when it is not this year's)."""
        # What ``now`` adds is its date, the same all through one minute (zones are whole
        # minutes apart).
        key = (at, now // 60)
        said = self._said.get(key)
        if said is None:
            if len(self._said) >= 1024:
                self._said.clear()
            said = self._said[key] = self._word(at, now)
        return said

    def duration(self, seconds: float) -> str:
        """``1 hour 20 minutes``, ``2 Tage und 3 Stunden``."""
        return say_duration(self.language, max(0, round(seconds)))

    def within(self, seconds: float) -> str:
        """When the next word comes at the latest: ``within 24 hours``, ``in 24 Stunden``."""
        return say_within(self.language, seconds)

    def period(self, seconds: float) -> str:
        """How long something lasts, as a time limit: ``48 hours``, ``48 Stunden``."""
        return say_period(self.language, seconds)

    def span(self, start: float, end: float, now: float) -> str:
        """From ``start`` to ``end``, as of ``now``: "tomorrow from 2:00 AM to 3:00 AM",
        "from 11:00 PM today to 1:00 AM tomorrow", "am Sonntag, 13. Dezember, von 02:00 Uhr
        bis 03:00 Uhr"; in a language without a shape of its own, the two moments."""
        shape = _SPAN_SHAPES.get(str(self._locale.language))
        if shape is None:
            return f"{self.when(start, now)} - {self.when(end, now)}"
        begins, ends = (datetime.fromtimestamp(at, self._zone) for at in (start, end))
        today = datetime.fromtimestamp(now, self._zone).date()
        times = {"start": self._clock(begins), "end": self._clock(ends)}
        if begins.date() == ends.date():
            day = self._day(begins.date(), today, shape.dated_one)
            return shape.one_day.format(day=day, **times)
        days = (self._day(moment.date(), today, shape.dated_two) for moment in (begins, ends))
        return shape.two_days.format(day=next(days), end_day=next(days), **times)

    def _day(self, day: date, today: date, dated: str) -> str:
        offset = (day - today).days
        if offset in _SPAN_DAYS and offset in self._days:
            return self._days[offset]
        return dated.format(date=self._date(day, today))

    def _clock(self, moment: datetime) -> str:
        """The clock time of ``moment``, in the language's shape, with the zone if said."""
        clock = self._shape.clock.format(time=format_time(moment, "short", locale=self._locale))
        if self._say_zone:
            clock = f"{clock} {moment.tzname()}"
        # CLDR puts a narrow no-break space in "5:01 PM": outside SMS's GSM alphabet, one
        # such character would send the whole SMS as UCS-2, at 70 characters a segment.
        return clock.translate(_PLAIN_SPACES)

    def routes(self, routes: tuple[str, ...]) -> str:
        """On-call's routes as a list: ``Slack and email``, ``Slack und E-Mail``."""
        return say_routes(self.language, routes)

    def _word(self, at: float, now: float) -> str:
        moment = datetime.fromtimestamp(at, self._zone)
        today = datetime.fromtimestamp(now, self._zone).date()
        clock = self._clock(moment)
        offset = (moment.date() - today).days
        if offset in (0, -1) and offset in self._days:
            return self._shape.relative.format(day=self._days[offset], time=clock)
        return self._shape.dated.format(date=self._date(moment.date(), today), time=clock)

    def _date(self, day: date, today: date) -> str:
        return format_date(day, self._dated[day.year == today.year], locale=self._locale)


def _full_weekday(pattern: str) -> str:
    return re.sub(r"(?<!E)E{1,3}(?!E)", "EEEE", pattern)


def _cldr_shape(locale: Locale) -> _Shape:
    """CLDR's pattern for a relative day and a time ("{1} 'à' {0}")."""
    pattern = str(locale.datetime_formats_relative.get("full") or "{1} {0}")
    # CLDR quotes literal words ('à'); '' is a quote itself.
    words = pattern.replace("''", "\0").replace("'", "").replace("\0", "'")
    words = words.replace("{1}", "{day}").replace("{0}", "{time}")
    return _Shape(words, words.replace("{day}", "{date}"))


_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})
_UNITS = (("duration-day", 86400), ("duration-hour", 3600), ("duration-minute", 60))


@functools.lru_cache(maxsize=4096)
def say_duration(language: str, seconds: int) -> str:
    """A duration as a person says it, to the minute, in at most two units: ``45 seconds``,
    ``1 hour 20 minutes``, ``2 Tage und 3 Stunden`` (CLDR's units, plural rules and lists)."""
    locale = Locale.parse(language, sep="-")
    if seconds < 60:
        return format_unit(seconds, "duration-second", length="long", locale=locale)
    parts: list[tuple[str, int]] = []
    left = seconds - seconds % 60
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count or parts:
            parts.append((unit, count))
        if len(parts) == 2:
            break
    words = [format_unit(n, unit, length="long", locale=locale) for unit, n in parts if n]
    # English keeps its "1 hour 20 minutes"; others join as their writers do ("1 Stunde und
    # 20 Minuten", "1 heure et 20 minutes").
    joined = format_list(
        words, style="unit-narrow" if locale.language == "en" else "standard", locale=locale
    )
    return joined.translate(_PLAIN_SPACES)


def _whole_units(seconds: float) -> tuple[str, int]:
    """A span in one unit, as people say a time limit: whole hours up to two days ("48
    hours"), else whole days, else minutes."""
    whole = round(seconds)
    if whole % 3600 == 0 and 3600 <= whole <= 48 * 3600:
        return "hour", whole // 3600
    if whole % 86400 == 0 and whole:
        return "day", whole // 86400
    return "minute", max(1, round(whole / 60))


@functools.lru_cache(maxsize=256)
def say_period(language: str, seconds: float) -> str:
    """A time limit in one unit: ``48 hours``, ``48 Stunden``, ``3 days``, ``90 minutes``."""
    unit, count = _whole_units(seconds)
    locale = Locale.parse(language, sep="-")
    said = format_unit(count, f"duration-{unit}", length="long", locale=locale)
    return said.translate(_PLAIN_SPACES)


@functools.lru_cache(maxsize=256)
def say_within(language: str, seconds: float) -> str:
    """``within 24 hours`` in English, as before; in another language CLDR's "in 24 hours"
    ("in 24 Stunden"): in whole hours up to two days, else whole days, else minutes."""
    unit, count = _whole_units(seconds)
    locale = Locale.parse(language, sep="-")
    if locale.language == "en":
        return f"within {format_unit(count, f'duration-{unit}', length='long', locale=locale)}"
    # CLDR's future pattern for the unit, by the language's plural rule ("in {0} Stunden").
    patterns = locale._data["date_fields"][unit]["future"]
    form = locale.plural_form(count)
    return str(patterns.get(form, patterns["other"])).format(count)


# The routes that are a kind of thing rather than a brand, by language; brands ("Slack") are
# the same in every language.
_ROUTE_WORDS = {
    "en": {"email": "email", "webhook": "webhook"},
    "de": {"email": "E-Mail", "webhook": "Webhook"},
}


@functools.lru_cache(maxsize=256)
def say_routes(language: str, routes: tuple[str, ...]) -> str:
    """``Slack and email``: each route in the language, joined as its writers do ("" for
    none)."""
    if not routes:
        return ""
    locale = Locale.parse(language, sep="-")
    words = _ROUTE_WORDS.get(str(locale.language), _ROUTE_WORDS["en"])
    return format_list([words.get(route, route) for route in routes], locale=locale)
