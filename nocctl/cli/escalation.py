"""`nocctl escalation policy …` and `nocctl escalate run`."""
COMMANDS = ()
