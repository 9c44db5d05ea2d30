"""Maintenance windows (DESIGN §3), by noun: the window as a rule and its occurrences
(`windows`), a new window's request checked (`validation`), and the commands
(`commands`); matchers in Alertmanager syntax (`matchers`). Everything callers use is named here."""
from __future__ import annotations

from nocctl.services.maintenance.commands import (
    CAPABILITY,
    LIST_COLUMNS,
    STATES,
    Added,
    WindowListing,
    add,
    check,
    delete,
    end,
    list_windows,
    listing,
    show,
)
from nocctl.services.maintenance.validation import (
    RECURRENCES,
    SCOPES,
    NewWindow,
    parse_weekdays,
    type_names,
    validate,
    zone_named,
)
from nocctl.services.maintenance.windows import WEEKDAYS, Rulebook, WindowRule, load_rules

__all__ = ["CAPABILITY", "LIST_COLUMNS", "RECURRENCES", "SCOPES", "STATES", "WEEKDAYS", "Added", "NewWindow",
           "Rulebook", "WindowListing", "WindowRule", "add", "check", "delete", "end", "list_windows", "listing",
           "load_rules", "parse_weekdays", "show", "type_names", "validate", "zone_named"]
