"""The demo's organisation: `examples/org.json` (shipped inside the wheel too, see
`nocctl.resources`) — three clients and twelve sites across India with their people — plus
the NOC's own shift engineers, who are on call and work the incidents; and how noisy each
site is."""
from __future__ import annotations

import json
from typing import Any

NOC_ENGINEERS = ("deepa.pillai", "imran.sheikh", "neha.kulkarni")
# What the shift engineers and the shift lead may do, tenant-wide.
GRANTS = ("noc:view_all_clients", "noc:ack_alerts", "noc:escalate", "noc:assign_incidents")


def _organisation() -> dict[str, list[dict[str, str]]]:
    from nocctl.resources import examples_dir

    document: dict[str, Any] = json.loads((examples_dir() / "org.json").read_text(encoding="utf-8"))
    document["people"] += [
        {"username": "deepa.pillai", "name": "Deepa Pillai", "email": "deepa.pillai@example.com",
         "phone": "+91-80-4000-9001"},
        {"username": "imran.sheikh", "name": "Imran Sheikh", "email": "imran.sheikh@example.com",
         "phone": "+91-80-4000-9002"},
        {"username": "neha.kulkarni", "name": "Neha Kulkarni", "email": "neha.kulkarni@example.com",
         "phone": "+91-80-4000-9003"},
    ]
    return document


ORG = _organisation()
SITES = tuple(s["code"] for s in ORG["sites"])
CLIENT_OF = {s["code"]: s["client"] for s in ORG["sites"]}
IN_CHARGE = {s["code"]: s["in_charge"] for s in ORG["sites"]}
# Alerts per site relative to an ordinary one: a flaky warehouse, a busy store, a campus
# with a sync problem; small stores are quiet.
NOISE = {"GLOBEX-BOM-WH2": 3.0, "ACME-BLR-WF": 2.0, "INITECH-HYD": 1.8, "ACME-MYS": 0.6, "GLOBEX-AMD": 0.7}
