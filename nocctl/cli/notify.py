"""`nocctl notify …`: the notification outbox."""
COMMANDS = ()
