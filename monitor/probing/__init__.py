"""Probing: the ``scheduler`` runs each system's probe on time, ``probes`` do the network,
``state`` turns results into UP/DOWN, and ``runtime`` wires them to the store."""
