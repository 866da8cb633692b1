"""What each person is told and when (``notifier``), in which words (``composer``), and the
team's own notices (``oncall``)."""
