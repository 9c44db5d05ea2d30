"""`nocctl retention run`: the retention pass."""
COMMANDS = ()
