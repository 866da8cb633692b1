"""What each person is told and when (the rules: ``choice``; the I/O around them: ``notifier``,
with ``correlating``, ``handling`` and ``resume``), in which words (``composer``), and the
team's own notices (``oncall``)."""
