// Unit and property tests of the console's pure functions (node's own test runner), run by
// tests/api/console.rs with the embedded assets copied beside this file under assets/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addDecimals, allBins, binStart, presetRange, previousPeriod, projectPeriods, bandShares, dailySeries, parseShares,
  allocationOf } from "./assets/pages.js";

// A decimal string of `units` at 18 places, written the way the API writes amounts (no trailing zeros).
function text(units) {
  const neg = units < 0n, abs = neg ? -units : units;
  const scale = 10n ** 18n;
  const frac = (abs % scale).toString().padStart(18, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${abs / scale}${frac ? "." + frac : ""}`;
}

function randomUnits(seed) {
  // xorshift over BigInt: amounts up to ±10^20 with up to 18 places, some whole, some tiny.
  let x = BigInt(seed) * 0x9E3779B97F4A7C15n & 0xFFFFFFFFFFFFFFFFn;
  const next = () => { x ^= x << 13n; x &= 0xFFFFFFFFFFFFFFFFn; x ^= x >> 7n; x ^= x << 17n; x &= 0xFFFFFFFFFFFFFFFFn; return x; };
  const digits = next() % 39n;
  let v = next() * next() % (10n ** digits + 1n);
  if (next() % 5n === 0n) v -= v % 10n ** 18n; // whole
  return next() % 2n ? -v : v;
}

test("adding decimal texts is exact for any amounts up to 18 places", () => {
  for (let i = 1; i < 5000; i++) {
    const a = randomUnits(i), b = randomUnits(i + 100000), c = randomUnits(i + 200000);
    assert.equal(addDecimals(text(a), text(b)), text(a + b), `${text(a)} + ${text(b)}`);
    assert.equal(addDecimals(addDecimals(text(a), text(b)), text(c)), text(a + b + c));
  }
  assert.equal(addDecimals("0.1", "0.2"), "0.3");
  assert.equal(addDecimals("-1.5", "1.5"), "0");
  assert.equal(addDecimals("20.52022672899", "-0.00000000001"), "20.52022672898");
  assert.equal(addDecimals("0", "-0.000000000000000001"), "-0.000000000000000001");
});

test("date bins start where the API starts them", () => {
  assert.equal(binStart("2024-09-04", "week"), "2024-09-02"); // a Wednesday → its Monday
  assert.equal(binStart("2024-09-02", "week"), "2024-09-02");
  assert.equal(binStart("2024-09-01", "week"), "2024-08-26"); // a Sunday
  assert.equal(binStart("2024-09-30", "month"), "2024-09-01");
  assert.equal(binStart("2024-11-15", "quarter"), "2024-10-01");
  assert.deepEqual(allBins("2024-09-01", "2024-09-03", "day"), ["2024-09-01", "2024-09-02", "2024-09-03"]);
  assert.deepEqual(allBins("2024-01-15", "2024-08-01", "quarter"), ["2024-01-01", "2024-04-01", "2024-07-01"]);
  assert.equal(allBins("2024-01-01", "2024-12-31", "day").length, 366);
});

test("the previous period is as many whole months, or as many days, before", () => {
  const p = previousPeriod("2024-09-01", "2024-09-30");
  assert.deepEqual([p.start, p.end], ["2024-08-01", "2024-08-31"]);
  assert.equal(p.shift("2024-08-31"), "2024-09-30");
  const q = previousPeriod("2024-01-01", "2024-03-31");
  assert.deepEqual([q.start, q.end], ["2023-10-01", "2023-12-31"]);
  const d = previousPeriod("2024-09-10", "2024-09-16");
  assert.deepEqual([d.start, d.end], ["2024-09-03", "2024-09-09"]);
  assert.equal(d.shift("2024-09-03"), "2024-09-10");
  // March after February: the 31st moved back a month stays inside the shorter month.
  const m = previousPeriod("2024-03-01", "2024-03-31");
  assert.deepEqual([m.start, m.end], ["2024-02-01", "2024-02-29"]);
});

test("presets cover the month, the last month and the year of a given day", () => {
  assert.deepEqual(presetRange("this_month", "2024-02-10"), ["2024-02-01", "2024-02-29"]);
  assert.deepEqual(presetRange("last_month", "2024-01-10"), ["2023-12-01", "2023-12-31"]);
  assert.deepEqual(presetRange("last_30_days", "2024-03-01"), ["2024-02-01", "2024-03-01"]); // 29 days of February + 1
  assert.deepEqual(presetRange("last_3_months", "2024-03-10"), ["2024-01-01", "2024-03-31"]);
  assert.deepEqual(presetRange("this_year", "2024-03-10"), ["2024-01-01", "2024-12-31"]);
  assert.equal(presetRange("custom", "2024-03-10"), null);
});

test("the next page of a list is followed on this origin, with its query", async () => {
  globalThis.location = { href: "http://127.0.0.1:8080/#/costs" };
  const { nextPath } = await import("./assets/api.js");
  assert.equal(nextPath({ links: { next: "http://costd.example/v2/costs?start_date=2024-09-01&page=2&limit=5000" } }),
    "/v2/costs?start_date=2024-09-01&page=2&limit=5000");
  assert.equal(nextPath({ links: { next: null } }), null);
  assert.equal(nextPath({}), null);
});

test("a budget period's forecast is its actual plus the forecast days after today inside it, exactly", () => {
  const periods = [
    { start_at: "2024-08-01T00:00:00Z", end_at: "2024-08-31T00:00:00Z" },
    { start_at: "2024-09-01T00:00:00Z", end_at: "2024-09-30T00:00:00Z" },
    { start_at: "2024-10-01T00:00:00Z", end_at: "2024-10-31T00:00:00Z" },
  ];
  const performance = [
    { date: "2024-08-01T00:00:00Z", actual: "310.5", amount: "300.0" },
    { date: "2024-09-01T00:00:00Z", actual: "200.1", amount: "300.0" },
    { date: "2024-10-01T00:00:00Z", actual: "0.0", amount: "300.0" },
  ];
  // The forecast starts today (2024-09-29): today is in the actual already, so it is not added again.
  const days = [["2024-09-29", "9.9"], ["2024-09-30", "10.000000000000000001"], ["2024-10-01", "0.1"], ["2024-10-02", "0.2"]]
    .map(([date, amount]) => ({ date, amount, provider: "all", service: "all" }));
  assert.deepEqual(projectPeriods(performance, periods, days), [null, "210.100000000000000001", "0.3"]);
  // No forecast (the report's forecast failed or the periods are over): no projection at all.
  assert.deepEqual(projectPeriods(performance, periods, []), [null, null, null]);
  // A period ending today has nothing ahead of it.
  assert.deepEqual(projectPeriods(performance.slice(1, 2), [{ end_at: "2024-09-29T00:00:00Z" }], days), [null]);
});

test("an anomaly's cost, expected cost and band share one scale with room to spare", () => {
  const s = bandShares("400.0", "100.0", "105.0");
  assert.ok(Math.abs(s.cost - 100 / 1.1) < 1e-9, `${s.cost}`);
  assert.ok(s.expected < s.upper && s.upper < s.cost, JSON.stringify(s));
  // Stored before costd kept the band: the band is the expected cost alone.
  const old = bandShares("400.0", "100.0", null);
  assert.equal(old.expected, old.upper);
  // Nothing at all draws nothing, without dividing by zero.
  assert.deepEqual(bandShares("0.0", "0.0", "0.0"), { expected: 0, upper: 0, cost: 0 });
});

test("an anomaly's history has every day, exact sums per day and zeros where there was nothing", () => {
  const rows = [
    { accrued_at: "2024-03-01", amount: "0.1" }, { accrued_at: "2024-03-01", amount: "0.2" },
    { accrued_at: "2024-03-03T00:00:00Z", amount: "123456789012345678.000000000000000001" },
  ];
  const days = dailySeries(rows, "2024-02-28", "2024-03-03");
  assert.deepEqual(days.map((d) => [d.date, d.text]), [["2024-02-28", "0"], ["2024-02-29", "0"], ["2024-03-01", "0.3"],
    ["2024-03-02", "0"], ["2024-03-03", "123456789012345678.000000000000000001"]]);
  assert.equal(days[2].value, 0.3);
});

test("a split's shares are read as name=percentage, and anything else is named", () => {
  assert.deepEqual(parseShares("web=60, data = 40%"), [{ value: "web", pct: "60" }, { value: "data", pct: "40" }]);
  assert.deepEqual(parseShares("a=33.333333,b=66.666667"), [{ value: "a", pct: "33.333333" }, { value: "b", pct: "66.666667" }]);
  assert.throws(() => parseShares("web 60"), /web 60/);
  assert.throws(() => parseShares(" , "), /name=percentage/);
});

test("a virtual tag's preview adds every month of a value exactly, and its values up to the total", () => {
  for (let seed = 1; seed < 300; seed++) {
    const names = ["web", "data", "Support (unallocated)", null];
    const rows = [];
    let total = 0n;
    for (let i = 0; i < 12; i++) {
      const units = randomUnits(seed * 100 + i);
      total += units;
      rows.push({ "tag:team": names[(seed + i) % names.length], amount: text(units) });
    }
    const { values, total: shown } = allocationOf(rows, "team");
    assert.equal(shown, text(total));
    assert.equal(values.reduce((s, v) => addDecimals(s, v.amount), "0"), text(total));
    for (const v of values) assert.equal(v.unallocated, v.name === null || v.name.endsWith("(unallocated)"));
  }
});
