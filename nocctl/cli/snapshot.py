"""`nocctl snapshot …`: the metric snapshot pass and its snapshots."""
COMMANDS = ()
