"""nocctl: the command-line toolkit of a Network Operations Center."""
