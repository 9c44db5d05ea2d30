"""The weekly HTML report in a real browser (Debian's Chromium, driven by Playwright): a
realistic week built with the CLI — the example organisation, a few hundred alerts over
nine days with long type labels at every client, incidents that breached their SLA — made
with `--tz Asia/Kolkata` while the last day is still running, then opened at 1280×800,
at 390×844 and in print emulation (at a desktop width and at A4's printable width).

At every size: nothing wider than the viewport, every table as wide as its block and every
cell inside the viewport, no text clipped in its box, every column of every row visible,
every SVG label inside its chart, no console error and no request leaving the file. In
print, a chart and its table form one block the printer must not split. Under CI=true a
missing browser fails the test; elsewhere it skips, saying why."""
from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest_helpers import ORG, ndjson

CHROMIUM = os.environ.get("NOC_TEST_CHROMIUM", "/usr/bin/chromium")
NOW = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # 14:00 in Kolkata: the last day is partial
LONG_TYPES = (
    "ENVIRONMENTAL_SENSOR_TEMPERATURE_THRESHOLD_EXCEEDED_EXTENDED",
    "BUILDING_MANAGEMENT_SYSTEM_CHILLER_PLANT_COMMUNICATION_LOSS",
    "ACCESSCONTROLPANELTAMPERDETECTEDWITHOUTANYBREAKINGPOINTATALL",
)
# the builtin names with the widest capitals beside their bars, and the long ones above theirs
TYPES = ("DEVICE_OFFLINE", "WORK_ORDER_OVERDUE", "ATTENDANCE_MISSING", "GEOFENCE_BREACH", "DEVICE_SPOOF", *LONG_TYPES)
SITES = ("ACME-BLR-WF", "ACME-BLR-KOR", "ACME-MYS", "ACME-CHN", "GLOBEX-BOM-WH1", "GLOBEX-BOM-WH2", "GLOBEX-PNQ",
         "GLOBEX-AMD", "INITECH-GGN", "INITECH-NOI", "INITECH-HYD", "INITECH-CHN")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
VIEWS = {  # name: (width, height, media)
    "desktop": (1280, 800, "screen"),
    "phone": (390, 844, "screen"),
    "print": (1280, 800, "print"),
    "print-a4": (688, 1000, "print"),  # 210 mm − 2 × 14 mm margins at 96 dpi
}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _browser_or_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; the test extra has it)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set NOC_TEST_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_or_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


def _week(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """~320 alerts over the nine days before NOW (acknowledged and resolved for most, a few
    repeated), as ingest records: (triggers, closes)."""
    triggers, closes = [], []
    for i in range(320):
        site, alert_type = rng.choice(SITES), rng.choice(TYPES)
        first = NOW - timedelta(hours=rng.uniform(0.5, 9 * 24))
        base = {"alert_type": alert_type, "severity": rng.choice(SEVERITIES), "message": f"{alert_type} at {site}",
                "site": site, "entity_type": "device", "entity_id": f"dev-{i}", "occurred_at": iso(first)}
        triggers.append(base)
        if rng.random() < 0.2:
            triggers.append({**base, "occurred_at": iso(first + timedelta(minutes=5))})
        ack = first + timedelta(minutes=rng.uniform(1, 240))
        if rng.random() < 0.8 and ack < NOW:
            closes.append({**base, "action": "acknowledge", "occurred_at": iso(ack)})
            resolve = ack + timedelta(minutes=rng.uniform(5, 1200))
            if rng.random() < 0.8 and resolve < NOW:
                closes.append({**base, "action": "resolve", "occurred_at": iso(resolve)})
    return triggers, closes


@pytest.fixture
def weekly_html(admin_cli, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NOC_NOW", iso(NOW))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    triggers, closes = _week(random.Random(17))
    for batch in (triggers, closes):
        result = admin_cli("ingest", input=ndjson(*batch))
        assert result.exit_code == 0, result.stderr
    rng = random.Random(5)
    for n in range(24):  # CRITICAL/HIGH targets are hours: most of these breach
        created = NOW - timedelta(days=rng.uniform(0.3, 6.5))
        client = ("ACME", "GLOBEX", "INITECH")[n % 3]
        title = (f"Chiller plant at {client} lost communication with the building management system "
                 f"for the {n}th time this week, cold-room temperature rising across all zones")
        made = admin_cli("incident", "create", "--title", title, "--severity", rng.choice(("CRITICAL", "HIGH", "LOW")),
                         "--client", client, env={"NOC_NOW": iso(created)})
        assert made.exit_code == 0, made.stderr
        if n % 2:
            at = min(created + timedelta(hours=rng.uniform(1, 30)), NOW - timedelta(minutes=1))
            assert admin_cli("incident", "resolve", made.stdout.strip(), env={"NOC_NOW": iso(at)}).exit_code == 0
    out = tmp_path / "weekly.html"
    result = admin_cli("report", "weekly", "--tz", "Asia/Kolkata", "--days", "8", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


# Everything the page shows, measured in the page: what sticks out, what is clipped, which
# rows lose a column, which chart labels leave their chart.
MEASURE = r"""() => {
  const doc = document.documentElement, vw = doc.clientWidth, out = [];
  const name = el => `${el.tagName.toLowerCase()}${el.classList.length ? '.' + [...el.classList].join('.') : ''}`
    + ` "${(el.textContent || '').trim().slice(0, 50)}"`;
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  if (doc.scrollWidth > vw) out.push(`page is ${doc.scrollWidth}px wide in a ${vw}px viewport`);
  for (const el of document.querySelectorAll('body *')) {
    if (!shown(el) || el.closest('svg')) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > vw + 0.5) out.push(`outside the viewport: ${name(el)} (${r.left}..${r.right})`);
    const style = getComputedStyle(el);
    if (style.display !== 'inline' && el.scrollWidth > el.clientWidth + 1)
      out.push(`clipped: ${name(el)} (${el.scrollWidth} > ${el.clientWidth})`);
  }
  let tables = 0, cells = 0;
  for (const table of document.querySelectorAll('table')) {
    tables++;
    const room = table.parentElement.clientWidth;
    if (table.getBoundingClientRect().width < room - 1)
      out.push(`table narrower than its block: ${name(table)} (${table.getBoundingClientRect().width} of ${room})`);
    const columns = table.querySelectorAll('thead th').length;
    for (const row of table.querySelectorAll('tbody tr')) {
      const visible = [...row.children].filter(shown);
      cells += visible.length;
      if (visible.length !== columns) out.push(`a row shows ${visible.length} of ${columns} columns: ${name(row)}`);
    }
  }
  let labels = 0;
  for (const text of document.querySelectorAll('svg text')) {
    labels++;
    const r = text.getBoundingClientRect(), box = text.ownerSVGElement.getBoundingClientRect();
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.right > vw)
      out.push(`chart label outside its chart: "${text.textContent}" (${r.left}..${r.right}`
               + ` in ${box.left}..${box.right})`);
  }
  const blocks = [...document.querySelectorAll('.block')];
  const paired = blocks.filter(b => b.querySelector('figure') && b.querySelector('table')).length;
  return {problems: out, tables, cells, labels, blocks: blocks.length, paired,
          breakInside: blocks.map(b => getComputedStyle(b).breakInside),
          figureBreakAfter: [...document.querySelectorAll('figure')].map(f => getComputedStyle(f).breakAfter),
          header: document.querySelector('header .meta').textContent};
}"""


def _open(browser, html: Path, view: str) -> dict:
    """The page measured in one view, with the console errors and the requests that tried
    to leave the file."""
    width, height, media = VIEWS[view]
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def gate(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", gate)
    try:
        page.emulate_media(media=media)
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        found = page.evaluate(MEASURE)
        if media == "print":
            assert page.pdf(format="A4")[:5] == b"%PDF-", view  # it prints
    finally:
        page.close()
    return {**found, "errors": errors, "outside": outside}


def test_weekly_report_fits_and_prints_in_a_real_browser(browser, weekly_html):
    html = weekly_html.read_text(encoding="utf-8")  # the data the checks below rely on
    assert all(t in html for t in LONG_TYPES)
    assert "partial day" in html and "more breached incident" in html
    assert all(f">{code}<" in html for code in ("ACME", "GLOBEX", "INITECH"))
    assert "Mon 30 Nov 2026 14:00 IST (Asia/Kolkata)" in html
    for view, (_, _, media) in VIEWS.items():
        found = _open(browser, weekly_html, view)
        assert found["problems"] == [], f"{view}:\n" + "\n".join(found["problems"][:40])
        assert found["errors"] == [] and found["outside"] == [], view
        assert found["tables"] >= 11 and found["cells"] > 200 and found["labels"] > 40, view  # it is all there
        assert "IST (Asia/Kolkata)" in found["header"] and "." not in found["header"].split("generated")[0], view
        assert found["paired"] >= 8, view  # the charts sit with their tables
        if media == "print":
            assert set(found["breakInside"]) == {"avoid"}, (view, found["breakInside"])
            assert set(found["figureBreakAfter"]) == {"avoid"}, (view, found["figureBreakAfter"])
