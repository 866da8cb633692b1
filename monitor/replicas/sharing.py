"""Which live replica probes each check (and sends from each outbox shard): rendezvous
(highest random weight) hashing.

Every replica computes the same answer from the same facts (the live replicas and the checks
each one's files declare), with no coordination: a check goes to the replica whose hash with
it is highest among the live replicas that declare it. When a replica joins it takes about a
1/N share from each of the others; when one leaves only its checks move. A check that only
some replicas declare (a rolling update, files changing) goes to one of those, never to a
replica that does not know it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field


def weight(replica: str, system: str) -> int:
    """The pair's hash: the same in every process and Python version (unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{replica}\0{system}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(system: str, replicas: Collection[str]) -> str | None:
    """The replica of ``replicas`` that probes ``system``; None when there is none."""
    return max(replicas, key=lambda replica: (weight(replica, system), replica), default=None)


def assign(
    declared: Mapping[str, Collection[str]], evenly: Callable[[str], bool] = lambda _: False
) -> dict[str, str]:
    """Each check any replica declares, to the replica that probes it, given the checks each
    live replica declares (by replica name).

    Units for which ``evenly`` is true are dealt evenly among the replicas that declare them
    (rendezvous with bounded loads): hashing alone splits thousands of checks within a percent
    or two, but 64 outbox shards over 3 replicas came out 17/21/26, and the replica with 26
    sent 40% of every fan-out. Each such unit, in name order, goes to the replica with the
    highest weight among those not yet holding their even share of the unit's group (units
    declared by the same replicas)."""
    declaring: dict[str, list[str]] = {}
    for replica, systems in declared.items():
        for system in systems:
            declaring.setdefault(system, []).append(replica)
    chosen: dict[str, str] = {}
    groups: dict[tuple[str, ...], list[str]] = {}
    for system, replicas in declaring.items():
        if evenly(system):
            groups.setdefault(tuple(sorted(replicas)), []).append(system)
        else:
            chosen[system] = owner(system, replicas) or ""
    for group, units in groups.items():
        # Each replica gets ``even`` units, and the first ``extra`` to fill up one more.
        even, extra = divmod(len(units), len(group))
        load = dict.fromkeys(group, 0)
        for unit in sorted(units):
            room = [r for r in group if load[r] < even or (load[r] == even and extra)]
            best = max(room, key=lambda r: (weight(r, unit), r))
            load[best] += 1
            extra -= load[best] == even + 1
            chosen[unit] = best
    return chosen


@dataclass(frozen=True)
class Share:
    """What one replica does to hold exactly its share."""

    take: frozenset[str] = frozenset()  # checks that are its own and it does not hold yet
    # Checks it holds that are another's, to the replica they go to (None: to nobody, when no
    # live replica declares them; whoever declares them later takes them).
    hand_over: Mapping[str, str | None] = field(default_factory=dict)


def share(me: str, assignment: Mapping[str, str], held: Collection[str]) -> Share:
    """What ``me`` takes and hands over, given ``assign``'s answer and what ``me`` holds."""
    take = frozenset(s for s, chosen in assignment.items() if chosen == me and s not in held)
    hand_over = {s: assignment.get(s) or None for s in held if assignment.get(s) != me}
    return Share(take, hand_over)
