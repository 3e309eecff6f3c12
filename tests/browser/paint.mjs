// Paint times of the console's costs page, for `cargo bench --bench console` (benches/console.rs), which
// starts a release costd over generated rows and runs this with COSTD_URL, COSTD_TOKEN, START, END.
// The page stamps the chart with how long it took (data-paint-ms): for a page load, from the navigation's
// start to the frame after the chart is drawn; for a control change, from the change to that frame.
// Prints one JSON line of figures.
import { chromium } from "playwright-core";

const { COSTD_URL: base, COSTD_TOKEN: token, START: start, END: end } = process.env;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
const out = {};
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(base + "/");
  await page.fill("#token", token);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector("#costs-chart");
  let painted = 0;
  const paint = async () => {
    await page.waitForFunction((n) => Number(document.body.dataset.costsPainted || 0) > n, painted, { timeout: 120000 });
    painted = Number(await page.evaluate(() => document.body.dataset.costsPainted));
    return Number(await page.getAttribute("#costs-chart", "data-paint-ms"));
  };
  const load = async (name) => {
    painted = 0;
    await page.goto(`${base}/?r=${Date.now()}#/costs?start_date=${start}&end_date=${end}`);
    out[name] = await paint();
  };
  const change = async (name, selector, value) => {
    await page.selectOption(selector, value);
    out[name] = await paint();
  };
  // A page load whose query the server has not answered yet, then the same again (server cache warm).
  await load("page_load_cold_ms");
  await load("page_load_warm_ms");
  // Controls: a new query, then back to one the page has already fetched.
  await change("change_bin_month_uncached_ms", "#c-bin", "month");
  await change("change_bin_day_cached_ms", "#c-bin", "day");
  await change("change_group_region_uncached_ms", "#c-groupings", "region");
  await change("change_group_service_cached_ms", "#c-groupings", "service");
  out.rows = Number(await page.textContent("#row-count"));
  out.total = await page.getAttribute("#total-cost", "data-amount");
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
