"""Probes: check a system over the network and say how it went, as a ProbeResult.

``make_session`` builds the one aiohttp session all probes share; ``Prober.probe`` turns a
``SystemConfig`` into a ``ProbeResult`` (http, tcp or a short steps journey), never raising.
"""

from monitor.probing.probes.http import MAX_BODY, make_session
from monitor.probing.probes.prober import Prober

__all__ = ["MAX_BODY", "Prober", "make_session"]
