"""`nocctl status`: the current picture from the latest snapshots."""
COMMANDS = ()
