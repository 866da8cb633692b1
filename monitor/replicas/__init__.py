"""Several replicas on one database: who is alive, which checks each probes, which one leads.

``sharing`` is the rule (pure): each check belongs to one live replica that knows it, by
rendezvous hashing, so a replica joining or leaving moves only its own share. ``membership``
is the I/O around it: a heartbeat that says this replica is alive, takes and hands over checks
through the store (``roles.Replicas``), and holds the lead. docs/replicas.md says what happens
when a replica dies at each moment.
"""
