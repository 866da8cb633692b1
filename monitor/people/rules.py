"""The people the monitor may have to tell, as apps and files give them: one set of rules.

``POST /api/v1/users``, ``POST /api/v1/attempts`` and ``monitor users import`` all check a
person with the models below, so a CSV row and a JSON body are refused for the same reasons and
in the same words. The same models give the OpenAPI document its schemas. Validated with
``known_systems(...)`` as context, a subscriber naming a system no check file declares is
refused (with "did you mean"); without it, system names are only checked for their form.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from monitor.locales import check_language, check_timezone
from monitor.model import Person
from monitor.text import unknown_name

NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
# No control characters, and no space at either end (an id of "  " is no id).
TRIMMED = r"^[^\x00-\x20\x7f]([^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
SYSTEM_NAME = r"^[a-z0-9-]+$"
EMAIL = r"^[^@\s,;<>]+@[^@\s,;<>]+$"
# E.164, what the SMS API takes: "+", the country code and the number, 8 to 15 digits in all.
E164 = r"^\+[1-9][0-9]{7,14}$"
WEBHOOK = r"^https?://\S+$"
CONTACTS = ("email", "phone", "webhook")
UNREACHABLE = "no email, phone or webhook: there would be no way to tell them"
_SYSTEMS_KEY = "systems"


def known_systems(names: Collection[str]) -> dict[str, Any]:
    """The validation context under which a subscriber may only name these systems."""
    return {_SYSTEMS_KEY: frozenset(names)}


def _known(name: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get(_SYSTEMS_KEY)
    if known is not None and name not in known:
        raise PydanticCustomError("unknown_system", unknown_name("system", name, known))
    return name


class Strict(BaseModel):
    # strict: "yes" is not a boolean and 7 is not a string; extra fields are refused so a typo
    # ("emial") is an error, not silently dropped data. Nothing is trimmed or coerced: what the
    # published schema refuses, the server refuses.
    model_config = ConfigDict(extra="forbid", strict=True)


SystemName = Annotated[str, Field(pattern=SYSTEM_NAME, min_length=1, max_length=63)]
KnownSystem = Annotated[SystemName, AfterValidator(_known)]
Email = Annotated[str, Field(pattern=EMAIL, max_length=254)]
Phone = Annotated[
    str,
    Field(
        pattern=E164,
        max_length=16,
        description="E.164: '+', the country code and the number, digits only.",
    ),
]
WebhookUrl = Annotated[str, Field(pattern=WEBHOOK, max_length=2000)]


def _zone(name: str) -> str:
    try:
        return check_timezone(name)
    except ValueError as exc:
        raise PydanticCustomError("unknown_timezone", str(exc)) from None


def _language(tag: str) -> str:
    try:
        return check_language(tag)
    except ValueError as exc:
        raise PydanticCustomError("unknown_language", str(exc)) from None


Timezone = Annotated[
    str,
    Field(max_length=64, description="IANA time zone, like America/New_York."),
    AfterValidator(_zone),
]
Language = Annotated[
    str,
    Field(max_length=35, description="BCP 47 language tag, like de, en-US or pt-BR."),
    AfterValidator(_language),
]


class User(Strict):
    """A person as an app knows them; contacts are optional (null or absent when unknown)."""

    id: Annotated[str, Field(min_length=1, max_length=200, pattern=TRIMMED)]
    name: Annotated[str, Field(max_length=200, pattern=NO_CONTROL)] = ""
    email: Email | None = None
    phone: Phone | None = None
    webhook: WebhookUrl | None = None
    timezone: Timezone | None = None
    language: Language | None = None

    def person(self, systems: Sequence[str] = ()) -> Person:
        return Person(
            self.id,
            self.name,
            self.email,
            self.phone,
            self.webhook,
            tuple(systems),
            self.timezone,
            self.language,
        )


class Subscriber(User):
    """A person and the systems they subscribe to (told whenever one of those is down); they
    need an email, a phone or a webhook, or they could never be told."""

    systems: list[KnownSystem] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _reachable(self) -> Subscriber:
        if not (self.email or self.phone or self.webhook):
            raise PydanticCustomError("unreachable", UNREACHABLE)
        return self


@dataclass(frozen=True, slots=True)
class Refusal:
    """One thing wrong with a person: the field at fault (dotted; "" for the whole person)."""

    field: str
    reason: str


def refusals(data: object, error: ValidationError) -> list[Refusal]:
    """Every reason ``Subscriber`` refused ``data``, in words a person can act on.

    pydantic checks the whole person only once every field is valid; a person with a bad
    field and no contact at all is told both at once.
    """
    found = [Refusal(dotted(e["loc"]), explain(e)) for e in error.errors(include_url=False)]
    reported = any(r.reason == UNREACHABLE for r in found)
    if not reported and isinstance(data, Mapping) and not any(data.get(c) for c in CONTACTS):
        found.append(Refusal("", UNREACHABLE))
    return found


def dotted(loc: Sequence[int | str]) -> str:
    """``users.3.email``: the parts of a pydantic location, joined by dots."""
    return ".".join(str(part) for part in loc)


def explain(error: ErrorDetails) -> str:
    """The reason for one pydantic error about a person, quoting what was given (but never a
    webhook URL, which may carry a secret)."""
    kind = error["type"]
    value = error.get("input")
    field = next((part for part in reversed(error["loc"]) if isinstance(part, str)), "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch" and isinstance(value, str):
        shown = _clip(value)
        if field == "email":
            return f"{shown!r} is not an email address"
        if field == "phone":
            return _not_e164(value)
        if field == "webhook":
            return "not an http:// or https:// URL"
        if field in ("system", "systems"):
            return f"{shown!r} is not a system name (lowercase letters, digits and '-')"
        if field == "id":
            return "must not be empty, start or end with a space, or hold control characters"
        if field == "name":
            return "must be one line, without control characters"
    if kind == "string_too_short" and field == "id":
        return "must not be empty"
    return str(error["msg"])


def _not_e164(value: str) -> str:
    reason = f"{_clip(value)!r} is not a phone number in E.164 form"
    digits = re.sub(r"[\s().-]", "", value)
    if re.fullmatch(E164, digits):
        return f"{reason} (did you mean {digits!r}?)"
    return f"{reason}: '+', the country code and the number, like +447700900123"


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
