"""Check files and monitor.yaml: YAML in, validated settings out, or every problem at once.

Each problem names the file, the line and the field, so an on-call engineer can go straight to
it. Values written as ``${NAME}`` come from the environment (``${NAME:-default}`` when unset);
secrets never live in the files, and messages quote what the file says, not what the
environment put there.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Collection, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    TypeAlias,
    TypeVar,
    Union,
    get_args,
    get_origin,
)
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from monitor.durations import parse_duration, short_duration

SETTINGS_FILE = "monitor.yaml"
_SETTINGS_FILES = (SETTINGS_FILE, "monitor.yml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MAX_VALUES = 20_000  # a check file has dozens; more is a mistake, or aliases expanding
# A check file is a few kilobytes. Reading stops past this size: parsing YAML in Python takes
# seconds per megabyte, and a reload must not stall the monitor over a file that is not a check.
MAX_FILE_BYTES = 1024 * 1024
_MAX_DEPTH = 50  # a check file nests a handful deep; a JSON body for a step, a few more
DEFAULT_TIMEOUT = 5.0  # a probe's, when its check file does not say (and every is longer)
Path_: TypeAlias = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class _At(ValueError):
    """A whole-model check whose fault lies in one field: ``at`` is that field's path."""

    def __init__(self, at: Path_, message: str) -> None:
        super().__init__(message)
        self.at = at


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("duration_unit", "{number} needs a unit", {"number": value})
    raise PydanticCustomError("duration_type", "expected a duration")


def _optional_duration(value: object) -> object:
    return None if value is None else _duration(value)


def _whole(value: object) -> object:
    # pydantic would read `true` as 1; a count written as yes/no is a mistake, not a number.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
OptionalDuration = Annotated[float | None, BeforeValidator(_optional_duration)]
Whole = Annotated[int, BeforeValidator(_whole)]


def _status_list(value: object) -> object:
    return [value] if isinstance(value, int) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"{_without_password(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = _without_password(url)
        guess = (
            f" (did you mean 'https://{shown}'?)" if "://" not in url and url[:1].isalnum() else ""
        )
        raise ValueError(f"{shown!r} is not an http:// or https:// URL{guess}")
    return url


def _without_password(url: str) -> str:
    """The URL with any ``user:password@`` reduced to ``user:***@``, for messages."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


class HttpExpect(_Strict):
    """What a passing HTTP answer looks like."""

    status: Annotated[
        list[Annotated[int, BeforeValidator(_whole), Field(ge=100, le=599)]],
        BeforeValidator(_status_list),
    ] = [200]
    body_contains: str | None = None
    json_fields: dict[str, Any] | None = Field(default=None, alias="json")
    max_latency: OptionalDuration = None
    cert_valid_for: OptionalDuration = None


class HttpProbe(_Strict):
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    expect: HttpExpect = HttpExpect()

    _url = field_validator("url")(classmethod(lambda cls, v: _check_http_url(v)))

    @model_validator(mode="after")
    def _cert_needs_https(self) -> HttpProbe:
        if self.expect.cert_valid_for is not None and not self.url.startswith("https://"):
            raise _At(
                ("expect", "cert_valid_for"),
                "checks a TLS certificate, so the url must start with https://",
            )
        return self


class TcpProbe(_Strict):
    host: str = Field(min_length=1)
    port: Whole = Field(ge=1, le=65535)


class Step(_Strict):
    """One request of a journey. A relative ``url`` is resolved against the first step's URL."""

    name: str | None = None
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = {}
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    expect: HttpExpect = HttpExpect()
    token: str | None = Field(
        default=None,
        description=(
            "Dotted path into this step's JSON answer; later steps send it as a bearer token."
        ),
    )

    @model_validator(mode="after")
    def _one_body(self) -> Step:
        bodies = {"body": self.body, "json": self.json_body, "form": self.form}
        given = [written for written, value in bodies.items() if value is not None]
        if len(given) > 1:
            raise _At(
                (given[-1],), f"give only one of body, json and form (found {', '.join(given)})"
            )
        return self


class Probe(_Strict):
    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    steps: list[Step] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Probe:
        given = [k for k in ("http", "tcp", "steps") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one probe kind: http, tcp or steps"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.steps is not None:
            try:
                _check_http_url(self.steps[0].url)
            except ValueError as exc:
                raise _At(
                    ("steps", 0, "url"), f"{exc} (only later steps may be relative)"
                ) from None
        return self

    @property
    def kind(self) -> str:
        return "http" if self.http else "tcp" if self.tcp else "steps"


class SystemConfig(_Strict):
    """One watched system, from one file in checks/."""

    name: str = Field(pattern=r"^[a-z0-9-]+$", max_length=63)
    title: str = Field(min_length=1)
    every: Duration = 30.0
    timeout: Duration = Field(
        default=DEFAULT_TIMEOUT, description="Default 5s, or every when that is shorter."
    )
    fail_after: Whole = Field(default=3, ge=1)
    recover_after: Whole = Field(default=2, ge=1)
    depends_on: list[str] = []
    workaround: str = ""
    probe: Probe

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> SystemConfig:
        if "timeout" not in self.model_fields_set:
            # Not written: a probe every 1s waits at most 1s, not the default 5s. The model
            # is frozen, and this is still its construction.
            object.__setattr__(self, "timeout", min(DEFAULT_TIMEOUT, self.every))
        elif self.timeout > self.every:
            raise _At(
                ("timeout",),
                f"must not be longer than every ({short_duration(self.every)}):"
                " a probe must end before the next one starts",
            )
        return self


class Org(_Strict):
    name: str = "Our team"
    support_phone: str | None = None
    support_email: str | None = None
    domain: str | None = Field(
        default=None, description="Domain of Message-IDs; defaults to support_email's domain."
    )

    @property
    def message_domain(self) -> str:
        if self.domain:
            return self.domain
        if self.support_email and "@" in self.support_email:
            return self.support_email.rsplit("@", 1)[1]
        return "monitor.invalid"


class Retention(_Strict):
    max_age: Duration = 7 * 86400.0
    max_results_per_system: Whole = Field(default=1000, ge=1)


class HttpClient(_Strict):
    """How probes use the network. By default each probe opens a fresh connection, as a new
    customer would; ``reuse_connections`` keeps connections alive between probes instead."""

    max_connections: Whole = Field(default=200, ge=1)
    max_connections_per_host: Whole = Field(default=0, ge=0)
    reuse_connections: bool = False


class MonitorSettings(_Strict):
    """Global settings from checks/monitor.yaml."""

    org: Org = Org()
    correlation_window: Duration = 300.0
    notify_after: Annotated[float, BeforeValidator(_duration), Field(ge=0)] = 60.0
    update_every: Duration = 86400.0
    attempt_lookback: Duration = 7200.0
    customer_messages: Literal["auto", "confirm"] = "auto"
    max_messages_per_person_per_day: Whole = Field(default=6, ge=1)
    oncall: list[str] = []
    retention: Retention = Retention()
    http: HttpClient = HttpClient()


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the configuration, with where to find it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(Exception):
    """The configuration was refused; ``problems`` lists every reason, by file and line.

    ``loaded`` is what did load, for checks that can go on without the rest (``monitor
    validate`` renders the templates with it): the settings (the defaults when monitor.yaml is
    refused) and the systems whose files are valid. ``refused`` names the systems whose files
    are not (as far as a file that does not parse shows its name).
    """

    def __init__(
        self,
        problems: list[Problem],
        loaded: Config | None = None,
        refused: Collection[str] = (),
    ) -> None:
        self.problems = problems
        self.loaded = loaded
        self.refused = frozenset(refused)
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Config:
    settings: MonitorSettings
    systems: dict[str, SystemConfig]
    files: dict[str, str] = field(default_factory=dict)  # system name -> file it came from


def load_config(directory: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read every ``*.yaml`` in ``directory``; raise ConfigError listing all problems.

    Problems come sorted by file, then line; a file that cannot be read or parsed still lets
    the others be checked, so one run shows everything to fix.
    """
    directory = Path(directory)
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    if not directory.is_dir():
        raise ConfigError([Problem(str(directory), None, "", "no such config directory")])

    settings = MonitorSettings()
    systems: dict[str, SystemConfig] = {}
    files: dict[str, str] = {}
    # Only what the checks across files need is kept of each file, not its whole document:
    # with 10,000 files, holding them all doubled the memory a load took.
    declared: dict[str, _Declared] = {}
    refused: set[str] = set()  # names of systems whose file has problems: not "unknown"
    checks: list[_Declared] = []
    shared: dict[object, object] = {}
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in paths:
        is_settings = path.name in _SETTINGS_FILES
        doc = _read_document(path, env, problems, empty_ok=is_settings)
        if doc is None:
            if not is_settings:
                refused |= _names_guessed(path)
            continue
        if is_settings:
            loaded = _validate(MonitorSettings, doc, problems)
            if loaded is not None:
                settings = loaded
            continue
        checks.append(_Declared.of(doc))
        system = _validate(SystemConfig, doc, problems)
        if system is not None:
            _share_equal_parts(system, shared)
        if system is None:
            if isinstance(doc.data.get("name"), str):
                refused.add(doc.data["name"])
            continue
        if system.name in systems:
            first = declared[system.name]
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(("name",)),
                    "name",
                    f"duplicate name {system.name!r}:"
                    f" {first.file}:{first.name_line} uses it already",
                )
            )
            continue
        systems[system.name] = system
        files[system.name] = doc.file
        declared[system.name] = checks[-1]

    problems.extend(_unknown_dependencies(checks, set(systems) | refused))
    problems.extend(_dependency_cycles(systems, declared))
    config = Config(settings=settings, systems=systems, files=files)
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0))
        raise ConfigError(problems, config, refused - set(systems))
    return config


def _names_guessed(path: Path) -> set[str]:
    """The name a file that cannot be parsed probably declares, so no one is told it is unknown."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return {path.stem, *re.findall(r"^name:[ \t]*[\"']?([a-z0-9-]+)", text, re.MULTILINE)}


@dataclass
class _Document:
    file: str
    data: dict[str, Any]
    lines: dict[Path_, int]  # where each key (or list item) is written
    texts: dict[Path_, str]  # each scalar exactly as written, before ${NAME} substitution
    unset: list[Path_]  # values naming an unset environment variable

    def line_of(self, loc: Path_) -> int | None:
        """The line of ``loc``, or of its nearest written ancestor (where a missing key belongs)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


@dataclass(frozen=True, slots=True)
class _Declared:
    """Of one check file, what the checks across files need: its name's line, its depends_on."""

    file: str
    name_line: int | None
    depends_on: tuple[tuple[int, object, int | None], ...]  # (index, entry, line)

    @classmethod
    def of(cls, doc: _Document) -> _Declared:
        entries = doc.data.get("depends_on")
        written = enumerate(entries) if isinstance(entries, list) else ()
        return cls(
            doc.file,
            doc.line_of(("name",)),
            tuple((i, entry, doc.line_of(("depends_on", i))) for i, entry in written),
        )


class _TooLarge(Exception):
    """The file is over ``MAX_FILE_BYTES``; ``head`` is its text up to the line that crosses."""

    def __init__(self, head: str) -> None:
        super().__init__()
        self.head = head


class _Overgrown(Exception):
    """The file writes more values, or nests them deeper, than any check file does."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Rules(Composer, SafeConstructor):
    """How check files are read, whichever parser reads them: safely, keeping mapping keys as
    written (``yes:`` stays "yes", ``200:`` "200").

    Composing stops at the value after the ``_MAX_VALUES``th written one (keys count; an alias
    does not), so a file of 100,000 keys is refused in a second rather than parsed for a minute,
    and at a value nested ``_MAX_DEPTH`` deep, before Python's recursion limit is near.
    """

    _written = 0
    _depth = 0
    if TYPE_CHECKING:  # from the parser each loader mixes in

        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)
        line = self.peek_event().start_mark.line + 1
        if self._depth >= _MAX_DEPTH:
            raise _Overgrown(line, f"values are nested more than {_MAX_DEPTH} deep")
        if not alias:
            self._written += 1
            if self._written > _MAX_VALUES:
                raise _Overgrown(
                    line,
                    f"more than {_MAX_VALUES} keys and values are written in this file: a check"
                    " file has dozens; is this the right file?",
                )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):  # e.g. `!!set [1]`
            raise yaml.constructor.ConstructorError(
                None, None, f"expected keys and values for {node.tag}", node.start_mark
            )
        self.flatten_mapping(node)  # `<<: *base` merges, as the safe loader does
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key: object = key_node.value
            else:
                key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a list or mapping used as a key",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # The safe constructors raise plain ValueError for `!!int x`; give it a line.
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"this value cannot be read as !!{kind}", node.start_mark
            ) from exc


class _Loader(_Rules, Reader, Scanner, Parser, Resolver):
    """The pure-Python parser: slow, and the one whose error messages users are shown."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class _FastLoader(_Rules, CParser, Resolver):
    """libyaml's parser under the same rules: several times faster, and far less garbage per
    file, which matters with 10,000 check files. Its error messages differ from PyYAML's, so a
    file it refuses is read again by ``_Loader`` to say why."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class _Unreadable(Exception):
    """The file as a whole cannot be checked; ``line`` and ``field`` say where it went wrong."""

    def __init__(self, line: int | None, message: str, field: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.field = field


def _read_document(
    path: Path, env: Mapping[str, str], problems: list[Problem], *, empty_ok: bool
) -> _Document | None:
    file = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                # The line the limit falls in, read to its end so its key can be named.
                raw += handle.readline(4096)
                end = raw.find(b"\n", MAX_FILE_BYTES)
                raise _TooLarge(raw[: end if end >= 0 else None].decode("utf-8", "replace"))
    except _TooLarge as exc:
        line = exc.head.count("\n") + 1
        problems.append(
            Problem(
                file,
                line,
                _field_on_line(exc.head, line),
                f"the file is larger than {MAX_FILE_BYTES // 1024} KiB (it goes on past this"
                " line): a check file is a few kilobytes; is this the right file?",
            )
        )
        return None
    except OSError as exc:
        problems.append(Problem(file, None, "", f"cannot read the file: {exc.strerror or exc}"))
        return None
    try:
        # Line ends as text mode reads them, so a CRLF file reads as it always has.
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(file, line, "", "cannot read the file: it is not UTF-8 text"))
        return None
    try:
        node, data = _parse(text)
        if data is None and empty_ok:
            data = {}
        if not isinstance(data, dict):
            raise _Unreadable(1, _not_a_mapping(data, empty_ok))
        index = _Index(file, {}, {}, problems)
        if node is not None:
            _index(node, (), index)
        unset: list[Path_] = []
        data = _substitute_env(data, (), env, index, unset)
    except _Unreadable as exc:
        problems.append(Problem(file, exc.line, exc.field, exc.message))
        return None
    except RecursionError:
        problems.append(Problem(file, None, "", "values are nested too deeply"))
        return None
    return _Document(file, data, index.lines, index.texts, unset)


def _read_with(kind: type[_Loader | _FastLoader], text: str) -> tuple[yaml.Node | None, Any]:
    loader = kind(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    try:
        try:
            return _read_with(_FastLoader, text)
        except Exception:
            pass  # the pure-Python parser says what is wrong, in the words users know
        return _read_with(_Loader, text)
    except _Overgrown as exc:
        raise _Unreadable(exc.line, exc.message, _field_on_line(text, exc.line)) from None
    except yaml.reader.ReaderError as exc:
        raise _Unreadable(
            text[: exc.position].count("\n") + 1,
            f"not valid YAML: the control character #x{exc.character:04x} is not allowed",
        ) from None
    except yaml.MarkedYAMLError as exc:
        line, message = _yaml_says(exc)
        rows = text.splitlines()
        if line is not None and line > len(rows):
            # The file ended mid-value ("key: [", "&anchor"): PyYAML points past the last line;
            # point at the last line written instead, which an editor can jump to.
            written = [number for number, row in enumerate(rows, 1) if row.strip()]
            line = written[-1] if written else 1
        raise _Unreadable(line, message, _field_on_line(text, line)) from None
    except yaml.YAMLError as exc:
        raise _Unreadable(None, f"not valid YAML: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # The safe constructors' own slips on odd !!tags, outside any one value.
        raise _Unreadable(
            None, f"not valid YAML: a !!tagged value cannot be read ({exc})"
        ) from None


def _yaml_says(exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    """The line to look at and PyYAML's reason, in words an on-call engineer uses."""
    said = exc.problem or str(exc)
    context = exc.context or ""
    at = exc.problem_mark or exc.context_mark
    line = at.line + 1 if at else None
    opened = exc.context_mark.line + 1 if exc.context_mark else line
    if "'\\t'" in said:
        return line, "not valid YAML: this line has a tab; indent with spaces, not tabs"
    if "mapping values are not allowed" in said:
        return line, (
            "not valid YAML: unexpected ':' on this line; check its indentation,"
            " or quote a value that contains ': '"
        )
    if said.startswith(("expected <block end>", "did not find expected key")):
        return line, "not valid YAML: this line is indented differently from the lines above it"
    if "did not find expected '-' indicator" in said:
        return line, (
            "not valid YAML: this list item is indented differently from the items above it"
        )
    if "could not find expected ':'" in said:
        return opened, "not valid YAML: this line has a key without a ':' after it"
    if "quoted scalar" in context:
        return opened, "not valid YAML: a quote opened on this line is never closed"
    if "flow sequence" in context or "flow mapping" in context:
        brackets = "[ ]" if "sequence" in context else "{ }"
        return opened, f"not valid YAML: the {brackets} opened on this line is not closed"
    if "single document" in context:
        return line, "not valid YAML: a second document ('---'); write one system per file"
    if "found undefined alias" in said:
        return line, f"not valid YAML: {said}: no value is marked with that &anchor"
    if "cannot start any token" in said:
        return line, f"not valid YAML: {said}; put the value in quotes"
    return line, f"not valid YAML: {said}"


def _not_a_mapping(data: object, settings: bool) -> str:
    shape = "org: ..., notify_after: ..." if settings else "name: ..., title: ..., probe: ..."
    if data is None:
        return "the file is empty: a check file needs at least name, title and probe"
    return f"the file holds {_kind_of(data)}, but it should be keys and values ({shape})"


@dataclass
class _Index:
    file: str
    lines: dict[Path_, int]
    texts: dict[Path_, str]
    problems: list[Problem]
    seen: int = 0


def _index(
    node: yaml.Node, path: Path_, into: _Index, within: frozenset[int] = frozenset()
) -> None:
    """Record where each key and item is written and each scalar's text; report duplicate keys."""
    line = node.start_mark.line + 1
    if id(node) in within:
        raise _Unreadable(
            line, "an alias (*name) refers to a value that contains it", _dotted(path)
        )
    into.seen += 1
    if into.seen > _MAX_VALUES:
        top = path[:1]  # the key a person wrote, not the depth the aliases reached
        raise _Unreadable(
            into.lines.get(top, line),
            f"aliases here expand to more than {_MAX_VALUES} values",
            _dotted(top),
        )
    into.lines.setdefault(path, line)
    if isinstance(node, yaml.ScalarNode):
        into.texts[path] = str(node.value)
        return
    within = within | {id(node)}
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            key_line = key_node.start_mark.line + 1
            if key in first and key != "<<":
                into.problems.append(
                    Problem(
                        into.file,
                        key_line,
                        _dotted((*path, key)),
                        f"duplicate key {key!r} (first written on line {first[key]})",
                    )
                )
            first.setdefault(key, key_line)
            into.lines[(*path, key)] = key_line
            _index(value_node, (*path, key), into, within)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), into, within)


def _substitute_env(
    value: Any, path: Path_, env: Mapping[str, str], at: _Index, unset: list[Path_]
) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            unset.append(path)
            at.problems.append(
                Problem(
                    at.file,
                    at.lines.get(path),
                    _dotted(path),
                    f"environment variable {name} is not set"
                    f" (or write ${{{name}:-default}} to give a default)",
                )
            )
            return ""

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute_env(v, (*path, k), env, at, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, (*path, i), env, at, unset) for i, v in enumerate(value)]
    return value


def _validate(model: type[M], doc: _Document, problems: list[Problem]) -> M | None:
    try:
        loaded = model.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc: Path_ = tuple(error["loc"])
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, _At):
                loc = (*loc, *cause.at)
            if any(loc[: len(gap)] == gap for gap in doc.unset):
                continue  # already reported: the environment variable is not set
            problems.append(
                Problem(doc.file, doc.line_of(loc), _dotted(loc), _say(model, doc, loc, error))
            )
        return None
    return None if doc.unset else loaded


def _share_equal_parts(model: BaseModel, shared: dict[object, object]) -> None:
    """Make equal parts of different systems' configs one object.

    Most systems share their expectations (status 200) and each pydantic model keeps the set
    of fields it was given: about 2 KB a system, 20 MB with 10,000 systems, that sharing saves.
    The models are frozen and the sets are copied before pydantic changes them (model_copy),
    so a shared part is never changed through one of its users.
    """
    given = model.__pydantic_fields_set__
    object.__setattr__(model, "__pydantic_fields_set__", shared.setdefault(frozenset(given), given))
    for name, value in model.__dict__.items():
        if isinstance(value, BaseModel):
            _share_equal_parts(value, shared)
            # The repr names the type and every field's value, nested models' too.
            model.__dict__[name] = shared.setdefault(repr(value), value)


_WANTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list, like [a, b]",
    "dict_type": "keys and values",
    "duration_type": "a duration like 500ms, 15s, 5m, 2h or 1d",
}


def _say(model: type[BaseModel], doc: _Document, loc: Path_, error: Any) -> str:
    """The reason for one pydantic error, quoting what the file says."""
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    written = doc.texts.get(loc)
    got = _shown(value, written)
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind == "missing":
        parent = loc[-2] if len(loc) > 1 else None
        where = f" from {parent!r}" if isinstance(parent, str) else ""
        return f"required key {loc[-1]!r} is missing{where}"
    if kind == "string_type" and written is not None and isinstance(value, int | float | bool):
        reads_as = "true or false" if isinstance(value, bool) else "a number"
        return (
            f"expected text, got {written} (YAML reads it as {reads_as}):"
            f" put it in quotes, like '{written}'"
        )
    if kind == "model_type":
        keys = ", ".join(_keys_of(_model_at(model, loc)))
        return f"expected keys and values ({keys}), got {got}"
    if kind in _WANTED:
        return f"expected {_WANTED[kind]}, got {got}"
    if kind == "duration_unit":
        number = written if written is not None else str(ctx.get("number"))
        return f"{number} needs a unit, like {number}s or {number}m"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {got}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, got {got}"
    if kind == "greater_than":
        return f"must be more than {ctx['gt']}, got {got}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {got}"
    if kind == "string_pattern_mismatch" and loc == ("name",) and isinstance(value, str):
        slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "payment"
        return (
            f"{value!r} is not a valid name: use lowercase letters, digits and '-',"
            f" like {slug!r} (the title is what customers read)"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "must not be an empty list" if ctx.get("min_length") == 1 else str(error["msg"])
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _shown(value: object, written: str | None) -> str:
    """A value as the file shows it: scalars as written, containers by their kind."""
    if isinstance(value, str):
        shown = repr(_clip(value))
        if written is not None and "${" in written:
            shown += f" (from {_clip(written)})"
        return shown
    if value is None or isinstance(value, list | dict):
        return _kind_of(value)
    return _clip(written) if written is not None else _clip(repr(value))


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "keys and values"
    return f"a {type(value).__name__}"


def _unknown_key(model: type[BaseModel], loc: Path_) -> str:
    key = str(loc[-1])
    keys = _keys_of(_model_at(model, loc[:-1]))
    close = difflib.get_close_matches(key.lower(), keys, n=1)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    if len(loc) == 1 and model is SystemConfig and key in _keys_of(MonitorSettings):
        return f"unknown key {key!r}: it belongs in {SETTINGS_FILE}"
    if len(loc) == 1 and model is MonitorSettings and key in _keys_of(SystemConfig):
        return f"unknown key {key!r}: it belongs in a check file, not {SETTINGS_FILE}"
    return f"unknown key {key!r} (valid keys here: {', '.join(keys)})"


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    """The keys a file may write for ``model``, by their written names (aliases)."""
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: Path_) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc``, walking field annotations."""
    here: Any = model
    for part in loc:
        here = _step_into(here, part)
        if here is None:
            return None
    models = [t for t in _alternatives(here) if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if models else None


def _step_into(annotation: Any, part: str | int) -> Any:
    for option in _alternatives(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
            for name, info in option.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        origin = get_origin(option)
        if origin is list and isinstance(part, int):
            return get_args(option)[0]
        if origin is dict and isinstance(part, str):
            return get_args(option)[1]
    return None


def _alternatives(annotation: Any) -> list[Any]:
    """``annotation`` without Annotated wrappers, and each member of a union."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [alt for arg in get_args(annotation) for alt in _alternatives(arg)]
    return [annotation]


def _dotted(loc: Path_) -> str:
    """``probe.steps[0].url``: keys joined by dots, list positions in brackets."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_KEY_LINE = re.compile(
    r"^([ \t]*(?:-[ \t]+)*)([^\s#:'\"{}\[\],&*!|>%@`-][^:#]*?)[ \t]*:(?:[ \t]|$)"
)


_BARE_WORD = re.compile(r"[^\s#:'\"{}\[\],&*!|>%@`-][^\s:#]*")


def _field_on_line(text: str, line: int | None) -> str:
    """For a file YAML cannot parse: the key on ``line`` and the keys it sits under, by indent.

    Only a key with nothing after its ':' opens a block, so an over-indented line is named as
    the sibling it was meant to be. A line without a key (a list item, a key missing its ':')
    is named by the keys it sits under.
    """
    if line is None:
        return ""
    rows = text.splitlines()
    if not 0 < line <= len(rows):
        return ""
    row = rows[line - 1]
    match = _KEY_LINE.match(row)
    if match is not None:
        keys, indent = [match.group(2)], len(match.group(1).expandtabs(8))
    elif row.strip()[:1] in ("", "#"):
        return ""
    else:
        keys, indent = [], len(row.expandtabs(8)) - len(row.expandtabs(8).lstrip())
        if row.lstrip().startswith("-"):
            indent += 1  # "- item" may sit level with the key that holds the list
        else:
            word = _BARE_WORD.match(row.lstrip())  # most likely a key that lost its ':'
            keys = [word.group(0)] if word else []
    for row in reversed(rows[: line - 1]):
        above = _KEY_LINE.match(row)
        opens_block = above is not None and row[above.end() :].strip()[:1] in ("", "#")
        if above is not None and opens_block and len(above.group(1).expandtabs(8)) < indent:
            keys.insert(0, above.group(2))
            indent = len(above.group(1).expandtabs(8))
    return ".".join(keys)


def _unknown_dependencies(checks: list[_Declared], names: set[str]) -> Iterator[Problem]:
    """Each ``depends_on`` entry naming no system, in every check file, valid or not."""
    for check in checks:
        for index, dependency, line in check.depends_on:
            if not isinstance(dependency, str) or dependency in names:
                continue
            close = difflib.get_close_matches(dependency, sorted(names), n=1)
            yield Problem(
                check.file,
                line,
                f"depends_on[{index}]",
                f"no system is named {dependency!r}"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
            )


def _dependency_cycles(
    systems: dict[str, SystemConfig], declared: dict[str, _Declared]
) -> Iterator[Problem]:
    for cycle in _cycles(systems):
        first = cycle[0]
        index = systems[first].depends_on.index(cycle[1 % len(cycle)])
        yield Problem(
            declared[first].file,
            declared[first].depends_on[index][2],
            "depends_on",
            "forms a cycle: " + " -> ".join([*cycle, first]),
        )


def _cycles(systems: dict[str, SystemConfig]) -> list[list[str]]:
    """Each dependency cycle once, starting from its alphabetically first member."""
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()

    def walk(name: str, trail: list[str]) -> None:
        for dependency in systems[name].depends_on:
            if dependency not in systems:
                continue
            if dependency in trail:
                cycle = trail[trail.index(dependency) :]
                key = frozenset(cycle)
                if key not in seen_sets:
                    seen_sets.add(key)
                    start = cycle.index(min(cycle))
                    found.append(cycle[start:] + cycle[:start])
                continue
            walk(dependency, [*trail, dependency])

    for name in sorted(systems):
        walk(name, [name])
    return found


def dependency_closure(systems: Mapping[str, SystemConfig], name: str) -> set[str]:
    """Every system ``name`` depends on, directly or through a chain."""
    result: set[str] = set()
    stack = list(systems[name].depends_on) if name in systems else []
    while stack:
        current = stack.pop()
        if current in result or current not in systems:
            continue
        result.add(current)
        stack.extend(systems[current].depends_on)
    return result
