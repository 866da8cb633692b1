"""Demo equipment, never used by ``monitor run``: the scripted outage (``script``), its pages,
simulated systems, the mail catcher, and ``send-test``."""
