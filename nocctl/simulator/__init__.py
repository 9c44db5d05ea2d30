"""The demo (`nocctl demo`): a realistic organisation and weeks of alert traffic, played
through the code that runs in production, so that every listing and report has something
worth looking at. A client of the services, like the command line: it imports them, no
service imports it.

- `organisation`: the clients, sites and people (`examples/org.json`) plus the NOC's shift
  engineers, and how noisy each site is.
- `plan`: the period (`Plan`), India Standard Time, the maintenance windows (`windows`).
- `kinds`: the kinds of alerts — daily rhythm per kind, severities, repeats — and the draws
  of how long a problem lasts and when it is acknowledged.
- `traffic`: the problems of the period (background, correlated bursts, alerts inside the
  maintenance windows, scripted stories) expanded into native records (`Traffic`), from a
  seeded `random.Random`: the same seed and end give the same data.
- `feeds`: the sites' operational feeds over the period (tickets, work orders, shifts and
  check-ins, the device inventory, geofence and security events) as feed records.
- `driver`: one run (`run`) — set-up through the services, then the records replayed in
  simulated time through the real ingest pipeline, with the escalation pass as cron would
  run it and the NOC shift working the incidents; every six hours of simulated time, the
  feed records updated since through feed ingest, then the snapshot pass (derived alerts too).

The traffic: a diurnal pattern in India Standard Time per kind of alert (attendance at shift
changes, work orders in office hours, geofence breaches at night), a few noisy sites,
repeats of firing alerts (duplicates), correlated bursts (a site's gateway goes down and its
devices follow within minutes; a power failure), alerts inside the maintenance windows
(stored SUPPRESSED), acknowledge and resolve events with realistic delays and a long tail,
some alerts never resolved, a few manual escalations and two incidents opened by hand, one
of which misses its SLA."""
from nocctl.simulator.driver import Result, existing_data, quiet_settings, run
from nocctl.simulator.plan import IST_SECONDS, Plan, Window, windows
from nocctl.simulator.traffic import Traffic

__all__ = ["IST_SECONDS", "Plan", "Result", "Traffic", "Window", "existing_data", "quiet_settings", "run", "windows"]
