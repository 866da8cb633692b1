"""``monitor check SYSTEM``: that system's probe, once, now, as ``monitor run`` would run it.

On-call uses it to see for themselves what the monitor sees (after a fix, before a deploy, when
a check file changed): the same configuration, probe and reasons, with no store, scheduler or
messages. It prints one line and exits 0 when the probe passes, 1 when it fails, 2 when it could
not run (no such system, a refused check file).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from monitor.app import Options
from monitor.config import ConfigError, load_config
from monitor.model import ProbeResult, SystemClock
from monitor.probing.probes import Prober, make_session
from monitor.probing.probes.reasons import say_elapsed
from monitor.text import unknown_name

PASSED = 0
FAILED = 1
CANNOT_RUN = 2


async def check_now(options: Options, env: Mapping[str, str], name: str) -> int:
    """Probe ``name`` once and print the outcome; the exit code as the module says."""
    try:
        config = load_config(options.config, env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return CANNOT_RUN
    system = config.systems.get(name)
    if system is None:
        print(unknown_name("system", name, config.systems), file=sys.stderr)
        return CANNOT_RUN
    session = make_session(config.settings.http)
    try:
        result = await Prober(session, SystemClock()).probe(system)
    finally:
        await session.close()
    print(outcome(result))
    return PASSED if result.ok else FAILED


def outcome(result: ProbeResult) -> str:
    """``payment passed in 12ms: status 200 in 12ms`` or ``payment failed after 5.0s: ...``."""
    verdict = "passed in" if result.ok else "failed after"
    return f"{result.system} {verdict} {say_elapsed(result.duration)}: {result.reason}"
