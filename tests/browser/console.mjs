// The web console in a real browser (Debian's Chromium through playwright-core): a person's path through
// every page against a running costd. tests/api/console.rs starts costd and runs this with
//   COSTD_URL, COSTD_TOKEN (read/write, an MSP account with one billing profile), COSTD_READ_TOKEN (read only),
//   COSTD_SCREENSHOTS (a folder for one PNG per page), CHROMIUM (default /usr/bin/chromium).
// It prints one line per check and ends with "console: N checks passed"; any failure exits non-zero.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.COSTD_URL;
const token = process.env.COSTD_TOKEN;
const readToken = process.env.COSTD_READ_TOKEN;
const shots = process.env.COSTD_SCREENSHOTS;
if (!base || !token || !readToken || !shots) throw new Error("COSTD_URL, COSTD_TOKEN, COSTD_READ_TOKEN and COSTD_SCREENSHOTS are required");
mkdirSync(shots, { recursive: true });

let checks = 0;
function ok(cond, what) {
  if (!cond) throw new Error(`FAILED: ${what}`);
  checks++;
  console.log(`ok ${checks} - ${what}`);
}

/** Polls `fn` (in node) until it answers truthy; fails with `what` after `ms`. */
async function until(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`FAILED waiting for ${what} (last: ${last})`);
}

const CSV = [
  "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,BillingCurrency,RegionId",
  "Usage,2024-09-01,100.00,Compute,USD,eu-west-1",
  "Usage,2024-09-02,50.50,Storage,USD,eu-west-1",
  "Usage,2024-09-15,25.25,Compute,USD,us-east-1",
  "Tax,2024-09-30,10.00,Tax,USD,",
].join("\n") + "\n";
const BAD_CSV = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-09-01,\"1,245\",Compute\nUsage,not-a-date,1,Compute\n";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const totalText = () => page.textContent("#total-cost");
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // ---- Sign in: a bad token is refused at the field, a good one signs in.
  await page.goto(base + "/");
  await page.waitForSelector("form.signin");
  ok(await page.isVisible("label[for=token]"), "the sign-in page labels its token field");
  await shot("01-sign-in");
  await page.fill("#token", "cstd_not_a_real_token");
  await page.click("form.signin button[type=submit]");
  await until(async () => (await page.textContent("#signin-err")).includes("invalid or has been revoked"), "the bad-token message");
  ok(!(await page.isVisible("header#top")), "a bad token is refused and the console stays closed");
  await shot("02-sign-in-refused");
  await page.fill("#token", token);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector("#costs-chart");
  ok(await page.isVisible("header#top"), "a good token signs in and shows the costs page");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "costd_session");
  ok(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");
  ok(!(await page.evaluate(() => document.cookie.includes("costd_session"))), "no script can read the session cookie");
  ok(!(await page.evaluate((t) => document.documentElement.outerHTML.includes(t), token)), "the token is nowhere in the page");

  // ---- Costs before any upload: September 2024 is empty.
  const setRange = async (start, end) => {
    await page.fill("#c-start", start);
    await page.dispatchEvent("#c-start", "change");
    await page.fill("#c-end", end);
    await page.dispatchEvent("#c-end", "change");
  };
  await setRange("2024-09-01", "2024-09-30");
  await until(async () => (await totalText()) === "0.00 USD", "an empty September");
  ok(true, "September 2024 starts at 0.00 USD");

  // ---- Integrations: create a custom provider, upload by the file picker and by drag-and-drop.
  await page.click("a[href='#/integrations']");
  await page.waitForSelector("#i-name");
  await page.click("form[aria-labelledby=new-integration] button[type=submit]");
  await until(async () => (await page.textContent("#i-name-err")).includes("name"), "the missing-name error");
  ok(true, "creating a provider without a name shows the API's error at the field");
  await page.fill("#i-name", "Acme Cloud");
  await page.click("form[aria-labelledby=new-integration] button[type=submit]");
  const section = await page.waitForSelector("section[data-integration]");
  const integration = await section.getAttribute("data-integration");
  ok(integration.startsWith("accss_crdntl_"), "the new integration is listed with its token");
  const input = await section.$("input[type=file]");
  await input.setInputFiles({ name: "september.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
  await until(async () => (await page.textContent(`[data-integration="${integration}"] .upload-result`)).includes("Uploaded september.csv: 185.75"),
    "the upload's summary");
  // The list is drawn again once the upload is stored.
  ok(await page.waitForSelector(`[data-integration="${integration}"] td >> text=september.csv`), "the upload is listed");
  // Drag-and-drop of a broken file: row-numbered errors, nothing stored.
  const dt = await page.evaluateHandle((text) => {
    const d = new DataTransfer();
    d.items.add(new File([text], "broken.csv", { type: "text/csv" }));
    return d;
  }, BAD_CSV);
  await page.dispatchEvent(`[data-integration="${integration}"] .drop`, "drop", { dataTransfer: dt });
  await until(async () => (await page.$$eval(`[data-integration="${integration}"] .upload-errors li`, (l) => l.map((x) => x.textContent))).some((t) => t.startsWith("Row 1")),
    "row-numbered upload errors");
  const errs = await page.$$eval(`[data-integration="${integration}"] .upload-errors li`, (l) => l.map((x) => x.textContent));
  ok(errs.some((t) => t.startsWith("Row 1")) && errs.some((t) => t.startsWith("Row 2")), `a dropped bad CSV shows each row's problem (${errs.join(" | ")})`);
  ok((await page.$$(`[data-integration="${integration}"] tbody tr`)).length === 1, "the bad file left no upload behind");
  await shot("03-integrations");

  // ---- A bucket integration: the AWS form puts the API's errors at its fields; a sync's problem is shown
  // on the integration, and "Sync now" tries again. (The endpoint is allowed but nothing listens there.)
  await page.click("form[aria-labelledby=new-aws] button[type=submit]");
  await until(async () => (await page.textContent("#aws-bucket-err")).includes("bucket is required"), "the AWS form's field errors");
  ok((await page.textContent("#aws-export-err")).includes("export_name is required"), "connecting an AWS export without its fields shows each error at its field");
  await page.fill("#aws-bucket", "bills");
  await page.fill("#aws-export", "focus");
  await page.fill("#aws-key-id", "AKIAEXAMPLE");
  await page.fill("#aws-key", "console-secret-key");
  await page.fill("#aws-endpoint", process.env.COSTD_DEAD_ENDPOINT);
  await page.click("form[aria-labelledby=new-aws] button[type=submit]");
  const awsSection = await page.waitForSelector("section[aria-label='Integration bills/focus']");
  const aws = await awsSection.getAttribute("data-integration");
  ok(!(await page.content()).includes("console-secret-key"), "the secret key is not on the page once sent");
  // Its first sync runs in the server; the page looks again until it is done.
  const shows = async (needle) => {
    const text = await page.$eval(`[data-integration="${aws}"]`, (e) => e.textContent).catch(() => "");
    return text.includes(needle) ? text : false;
  };
  const failing = (e) => page.$eval(`[data-integration="${aws}"]`, (x) => x.textContent).catch(() => "(gone)")
    .then((t) => { throw new Error(`${e.message}; the integration shows: ${t}`); });
  await until(() => shows("could not list"), "the first sync's error on the integration", 30000).catch(failing);
  await page.click(`[data-integration="${aws}"] button >> text=Sync now`);
  await until(() => shows("The sync found problems"), "Sync now's outcome", 30000).catch(failing);
  ok((await page.textContent(`[data-integration="${aws}"] .integration-status`)) === "error", "a failed sync shows status error and its cause");
  await shot("03b-bucket-integration");

  // ---- Costs after the upload: the total and the chart change.
  await page.click("a[href='#/costs']");
  await until(async () => (await totalText()) === "185.75 USD", "September's total after the upload");
  ok(true, "the costs total shows the upload: 185.75 USD");
  const bars = await page.$$("#costs-chart svg rect");
  ok(bars.length === 4, `the chart stacks one bar segment per day and service (${bars.length})`);
  const firstPaint = await page.getAttribute("#costs-chart", "data-paint-ms");
  // Group by month and by region: the rows regroup.
  await page.selectOption("#c-bin", "month");
  await until(async () => (await page.$$("#costs-table tbody tr")).length === 3, "one monthly row per service");
  await page.selectOption("#c-groupings", "region");
  // By service there are three rows too: wait for the regions themselves.
  await until(async () => (await page.$$("#costs-table tbody tr")).length === 3
    && (await page.textContent("#costs-table tbody")).includes("eu-west-1"), "three regions (eu-west-1, us-east-1, none)");
  ok(true, "grouping by region per month gives three rows");
  // The table sorts by amount.
  await page.click("#costs-table th >> text=amount");
  const firstAmount = await page.textContent("#costs-table tbody tr:first-child td.num");
  ok(firstAmount === "150.50", `sorting by amount puts the largest first (${firstAmount})`);
  // A bad VQL filter is shown at the filter field.
  await page.fill("#c-filter", "costs.nonsense = 'x'");
  await page.click("form[aria-label='Cost query'] button[type=submit]");
  await until(async () => (await page.textContent("#c-filter-err")).length > 0, "the VQL error");
  ok((await page.textContent("#c-filter-err")).includes("filter"), `a bad filter's error is shown at the field: ${await page.textContent("#c-filter-err")}`);
  await page.fill("#c-filter", "costs.service = 'Compute'");
  await page.click("form[aria-label='Cost query'] button[type=submit]");
  await until(async () => (await totalText()) === "125.25 USD", "the filtered total");
  ok((await page.textContent("#c-filter-err")) === "", "a good filter clears the error and narrows the total to 125.25");
  // A cached setting answers from memory: back to no filter.
  await page.fill("#c-filter", "");
  await page.click("form[aria-label='Cost query'] button[type=submit]");
  await until(async () => (await totalText()) === "185.75 USD", "the unfiltered total again");
  const changeMs = await page.getAttribute("#costs-chart", "data-paint-ms");
  // Previous period line.
  await page.check("text=Show previous period");
  await until(async () => (await page.$$("#costs-chart polyline")).length === 1, "the previous-period line");
  ok(true, "the previous-period line is drawn");
  // Save the view as a report, then it is offered.
  await page.fill("#c-report-title", "September by region");
  await page.click("text=Save as report");
  await until(async () => (await page.$$eval("#c-report option", (o) => o.map((x) => x.textContent))).includes("September by region"), "the saved report");
  ok(true, "the view is saved as a cost report and offered in the report list");
  // The CSV download holds the rows.
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 30000 }), page.click("text=Download CSV")]);
  const path = await download.path();
  const { readFileSync } = await import("node:fs");
  const csv = readFileSync(path, "utf8");
  ok(csv.split("\n")[0].includes("region") && csv.includes("150.5"), "Download CSV exports the rows");
  await shot("04-costs");
  console.log(`paint: first ${firstPaint} ms, change (cached) ${changeMs} ms`);

  // ---- Billing rules: errors at their fields, then a rule of each kind that is needed here.
  await page.click("a[href='#/rules']");
  await page.waitForSelector("#rule-form");
  await page.selectOption("#r-type", "exclusion");
  await page.fill("#r-title", "No tax");
  await page.click("#rule-form button[type=submit]");
  await until(async () => (await page.textContent("#r-charge_type-err")).includes("charge_type"), "the charge_type error");
  ok(true, "an exclusion without charge_type shows the error at that field");
  await page.selectOption("#r-type", "custom");
  await page.fill("#r-title", "Bad SQL");
  await page.fill("#r-sql_query", "DELETE FROM costs");
  await page.click("#rule-form button[type=submit]");
  await until(async () => (await page.textContent("#r-sql_query-err")).length > 0, "the SQL error");
  ok(true, `custom SQL is refused at the field: ${await page.textContent("#r-sql_query-err")}`);
  await page.selectOption("#r-type", "adjustment");
  await page.fill("#r-title", "Show 50%");
  await page.fill("#r-percentage", "50");
  await page.click("#rule-form button[type=submit]");
  await until(async () => (await page.textContent("#rules-status")).includes("Created"), "the created rule");
  await page.selectOption("#r-type", "charge");
  await page.fill("#r-title", "Support fee");
  await page.fill("#r-service", "Support");
  await page.fill("#r-category", "Fee");
  await page.fill("#r-sub_category", "Monthly");
  await page.fill("#r-amount", "20");
  await page.fill("#r-start_date", "2024-09-01");
  await page.fill("#r-end_date", "2024-09-30");
  await page.click("#rule-form button[type=submit]");
  await until(async () => (await page.$$("#rules-table tbody tr")).length === 2, "two rules");
  ok(true, "an adjustment and a charge are created");
  // Edit the adjustment's title.
  await page.click("#rules-table tr:has-text('Show 50%') >> text=Edit");
  await page.fill("#r-title", "Show half");
  await page.click("#rule-form button[type=submit]");
  await until(async () => (await page.textContent("#rules-table")).includes("Show half"), "the edited rule");
  ok(true, "a rule is edited in place");
  await shot("05-rules");

  // ---- Managed accounts: create, link the integration, order the rules (the group-order error first).
  await page.click("a[href='#/accounts']");
  await page.waitForSelector("#a-name");
  await page.fill("#a-name", "Acme Corp");
  await page.fill("#a-email", "ops@acme.example");
  await page.click("form[aria-labelledby=new-account] button[type=submit]");
  const card = await page.waitForSelector("form[data-account]");
  const account = await card.getAttribute("data-account");
  const sel = `form[data-account="${account}"]`;
  await page.check(`${sel} input[value="${integration}"]`);
  const ruleOptions = await page.$$eval(`${sel} select[aria-label^="Add a rule"] option`, (o) => o.map((x) => [x.value, x.textContent]));
  const charge = ruleOptions.find(([, t]) => t.startsWith("Support fee"))[0];
  const adjust = ruleOptions.find(([, t]) => t.startsWith("Show half"))[0];
  await page.selectOption(`${sel} select[aria-label^="Add a rule"]`, charge);
  await page.selectOption(`${sel} select[aria-label^="Add a rule"]`, adjust);
  const profileOptions = await page.$$eval(`${sel} select[id^=profile] option`, (o) => o.map((x) => x.value));
  await page.selectOption(`${sel} select[id^=profile]`, profileOptions[1]);
  await page.click(`${sel} button[type=submit]`);
  await until(async () => (await page.textContent(`${sel} [data-fields=billing_rule_tokens] .err`)).includes("must come before"), "the group-order error");
  ok(true, `rules out of group order are refused at the rule list: ${await page.textContent(`${sel} [data-fields=billing_rule_tokens] .err`)}`);
  await page.click(`${sel} button[aria-label="Move Show half (Adjustment) up"]`);
  await page.click(`${sel} button[type=submit]`);
  await until(async () => (await page.textContent(`${sel} .ok`)) === "Saved.", "the saved account");
  ok(true, "moving the adjustment first saves the account");
  await shot("06-accounts");

  // ---- The managed account's view: its costs with its rules (50% of 185.75, plus the 20 fee).
  await page.selectOption("#view-as", account);
  await until(async () => !(await page.isHidden("#view-banner")), "the view banner");
  await page.click("a[href='#/costs']");
  await setRange("2024-09-01", "2024-09-30");
  await until(async () => (await totalText()) === "112.88 USD", "the managed account's total", 20000);
  ok(true, "the managed account sees 92.875 + 20 = 112.88 USD with its rules");
  ok((await page.textContent("#view-banner")).includes("Acme Corp"), "a banner says whose costs are shown");
  await shot("07-costs-managed-account");
  await page.click("a[href='#/rules']");
  await page.waitForSelector("#rules-status", { state: "attached" });
  ok(!(await page.isVisible("#rule-form")), "the managed-account view is read-only (no rule form)");
  await page.selectOption("#view-as", "");
  await page.click("a[href='#/costs']");
  await until(async () => (await totalText()) === "185.75 USD", "the MSP's raw total again");
  ok(true, "switching back shows the raw 185.75 USD");

  // ---- Invoices: a draft for September, listed with its total, its PDF downloads.
  await page.click("a[href='#/invoices']");
  await page.waitForSelector("#v-account");
  await page.fill("#v-start", "2024-09-01");
  await page.fill("#v-end", "2024-09-30");
  await page.click("form[aria-labelledby=new-invoice] button[type=submit]");
  await page.waitForSelector("#invoices-table");
  const row = await page.textContent("#invoices-table tbody tr");
  ok(row.includes("Acme Corp") && row.includes("112.88"), `the invoice is listed with the account's total (${row.trim()})`);
  // A draft is recomputed in place; sending without an SMTP server says what to configure.
  await page.click("button[aria-label='Regenerate INV-000001']");
  await until(async () => (await page.textContent("#invoices-status")).includes("INV-000001 recomputed: 112.88"), "the regenerated draft");
  ok(true, "regenerating the draft keeps its number and total");
  await page.click("button[aria-label='Send INV-000001']");
  await until(async () => (await page.textContent("#invoices-status")).includes("--smtp-url"), "the missing-SMTP error");
  ok((await page.textContent("#invoices-table tbody tr")).includes("draft"), "sending without SMTP says so and leaves the draft a draft");
  await shot("08-invoices");
  const [pdf] = await Promise.all([page.waitForEvent("download", { timeout: 30000 }), page.click("#invoices-table >> text=PDF")]);
  const bytes = readFileSync(await pdf.path());
  ok(bytes.subarray(0, 5).toString() === "%PDF-", "the invoice's PDF downloads");
  await page.goto(base + "/#/invoices");
  await page.waitForSelector("#invoices-table");

  // ---- Budgets: a budget on a report shows September's actual against it; a bad amount is refused at its field.
  const madeReport = await fetch(base + "/v2/cost_reports", { method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify({ title: "Everything" }) });
  ok(madeReport.status === 201, `a report for the budget (${madeReport.status})`);
  // A cost alert on the report, made through the API: the page lists it with what makes it fire.
  const madeAlert = await fetch(base + "/v2/cost_alerts", { method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ title: "Monthly jump", report_tokens: [(await madeReport.json()).token], interval: "month",
      threshold: 10, unit_type: "percentage", email_recipients: ["finops@example.com"] }) });
  ok(madeAlert.status === 201, `a cost alert on the report (${madeAlert.status})`);
  await page.click("a[href='#/budgets']");
  await page.waitForSelector("#b-name");
  await page.fill("#b-name", "Cloud");
  await page.selectOption("#b-report", { label: "Everything" });
  await page.fill("#b-first", "2024-09");
  await page.fill("#b-months", "2");
  await page.fill("#b-amount", "-5");
  await page.fill("#b-recipients", "finops@example.com");
  await page.click("form[aria-labelledby=new-budget] button[type=submit]");
  await until(async () => (await page.textContent("#b-amount-err")).includes("must not be negative"), "the amount's error");
  ok(true, "a negative budget amount is refused at its field");
  await page.fill("#b-amount", "100");
  await page.click("form[aria-labelledby=new-budget] button[type=submit]");
  await until(async () => (await page.$("table.budget-periods")) ? true
    : (await page.textContent("main")).includes("No budgets") ? null : false, "the new budget", 15000).catch(async (e) => {
    throw new Error(`${e.message}; the page says: ${(await page.textContent("main")).slice(0, 600)}`);
  });
  const september = await page.textContent("table.budget-periods tbody tr");
  ok(september.includes("2024-09-01") && september.includes("185.75") && september.includes("100.0") && september.includes("185.8%"),
    `September's actual against its budget (${september.trim()})`);
  ok((await page.textContent("table.budget-periods thead")).includes("Forecast"), "the periods show a forecast column");
  // The bar is drawn (a style attribute would be refused by the CSP): September's fill covers the track.
  const [fill, track] = await page.$eval("table.budget-periods tbody tr .bar", (bar) =>
    [bar.querySelector("i").getBoundingClientRect().width, bar.getBoundingClientRect().width]);
  ok(fill > 0 && fill >= track - 4, `September's bar is full and red past its budget (${fill} of ${track} px)`);
  ok((await page.textContent("main")).includes("Alert at 80% → finops@example.com"), "the budget's alert is listed");
  const alertRow = await page.textContent("#cost-alerts-table tbody tr");
  ok(alertRow.includes("Monthly jump") && alertRow.includes("Everything") && alertRow.includes("the month is up 10% on the one before")
    && alertRow.includes("never"), `the cost alert is listed with its rule (${alertRow.trim()})`);
  ok((await page.textContent("main")).includes("No anomalies."), "no anomalies yet, and how to be told of them");

  // ---- Report summaries: a chat channel's name is refused at its field; a summary is made and listed.
  await page.fill("#s-title", "Weekly cloud");
  await page.selectOption("#s-report", { label: "Everything" });
  await page.selectOption("#s-frequency", "weekly");
  await page.fill("#s-to", "#finops");
  await page.click("form[aria-labelledby=new-summary] button[type=submit]");
  await until(async () => (await page.textContent("#s-to-err")).includes("recipient_channels[0]"), "the recipient's error");
  ok(true, "a chat channel's name is refused at the summary's recipients");
  await page.fill("#s-to", "finops@example.com");
  await page.click("form[aria-labelledby=new-summary] button[type=submit]");
  await page.waitForSelector("#report-notifications-table");
  const summaryRow = await page.textContent("#report-notifications-table tbody tr");
  ok(summaryRow.includes("Weekly cloud") && summaryRow.includes("Everything") && summaryRow.includes("week") && summaryRow.includes("finops@example.com"),
    `the summary is listed (${summaryRow.trim()})`);

  // ---- An anomaly: a steady 100 a day for eight weeks, then 400 yesterday. The server's alert passes (run by
  // the test beside this scenario) find it once the upload commits; the page draws it against its band and
  // shows its history.
  const api = async (method, path, body) => {
    const res = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const everything = (await api("GET", "/v2/cost_reports")).body.cost_reports.find((r) => r.title === "Everything").token;
  ok((await api("POST", "/v2/anomaly_notifications", { cost_report_token: everything, threshold: 10 })).status === 201, "an anomaly notification on the report");
  const day = (n) => { const d = new Date(); d.setUTCHours(0, 0, 0, 0); d.setUTCDate(d.getUTCDate() - n); return d.toISOString().slice(0, 10); };
  const rows = ["ChargeCategory,ChargePeriodStart,BilledCost,ServiceName"];
  for (let n = 57; n >= 2; n--) rows.push(`Usage,${day(n)},100,Queue`);
  rows.push(`Usage,${day(1)},400,Queue`);
  const spiky = await api("POST", "/v2/integrations/custom_provider", { name: "Spiky" });
  ok(spiky.status === 201, `an integration for the anomaly (${spiky.status})`);
  const form = new FormData();
  form.append("csv", new Blob([rows.join("\n") + "\n"], { type: "text/csv" }), "spiky.csv");
  const sent = await fetch(`${base}/v2/integrations/${spiky.body.token}/costs.csv`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  ok(sent.status === 201, `eight weeks of history uploaded (${sent.status})`);
  await until(async () => (await api("GET", "/v2/anomaly_alerts")).body.anomaly_alerts.length > 0, "the anomaly alert", 30000);
  await page.reload();
  await page.waitForSelector("#anomalies-table");
  const anomalyRow = await page.textContent("#anomalies-table tbody tr");
  ok(anomalyRow.includes(day(1)) && anomalyRow.includes("Queue") && anomalyRow.includes("400.0") && anomalyRow.includes("100.0") && anomalyRow.includes("active"),
    `yesterday's anomaly is listed with its expected cost (${anomalyRow.trim()})`);
  const [band, cost] = await page.$eval("#anomalies-table tbody tr .band", (b) =>
    [b.querySelector(".range").getBoundingClientRect().right, b.querySelector(".cost").getBoundingClientRect().left]);
  ok(cost > band, `the day's cost is drawn past its usual band (${cost} > ${band} px)`);
  await page.click("#anomalies-table tbody tr >> text=History");
  await page.waitForSelector("tr.history-row svg.history");
  const dots = await page.$$eval("tr.history-row svg.history circle", (cs) => cs.map((c) => Number(c.getAttribute("r"))));
  ok(dots.length === 56 && dots.filter((r) => r > 2).length === 1, `the history has eight weeks of days and marks the anomaly's (${dots.length} days)`);
  const bandWidth = await page.$eval("tr.history-row svg.history rect.usual-band", (r) => r.getBoundingClientRect().width);
  ok(bandWidth > 300, `the history shades the usual band across its eight weeks (${bandWidth} px)`);
  await shot("09-budgets");
  await page.click("#anomalies-table tbody tr >> text=Archive");
  await until(async () => (await page.textContent("#anomalies-table tbody tr")).includes("archived"), "the archived anomaly");
  ok(true, "an anomaly is archived from the page");

  // ---- Allocation: a virtual tag with a split, saved from the page (a bad filter refused at its value first)
  // and previewed; a metric and rates uploaded (bad files refused line by line, nothing kept); the tag as the
  // costs page's grouping; a workspace shown in euros.
  await page.click("a[href='#/allocation']");
  await page.waitForSelector("#vtag-form");
  await page.fill("#p-from", "2024-09-01");
  await page.dispatchEvent("#p-from", "change");
  await page.fill("#p-to", "2024-09-30");
  await page.dispatchEvent("#p-to", "change");
  await page.fill("#vt-key", "team");
  await page.fill("#vt-value-0-filter", "costs.service = 'Compute");
  await page.selectOption("#vt-value-0-kind", "percentages");
  await page.fill("#vt-value-0-shares", "web=60, data=40");
  await page.click("#vtag-form >> text=Add value");
  await page.fill("#vt-value-1-filter", "costs.service = 'Storage'");
  await page.fill("#vt-value-1-name", "data");
  await page.click("#vtag-form button[type=submit]");
  await until(async () => (await page.textContent("#vt-value-0-err")).includes("values[0].filter"), "the bad filter's error at its value");
  ok(true, "a virtual tag with a bad filter is refused at that value");
  await page.fill("#vt-value-0-filter", "costs.service = 'Compute'");
  // Previewed before it is saved: the same exact shares, and nothing written.
  await page.click("#vt-preview-draft");
  await until(async () => (await page.$("#vtag-preview")) && (await page.textContent("#vtag-preview-area")).includes("not saved"), "the draft's preview");
  const drafted = await page.$$eval("#vtag-preview tbody tr", (rows) => rows.map((r) => r.querySelector("td").textContent + "=" + r.querySelector("td.num").getAttribute("title")));
  const savedBefore = await page.evaluate(async () => (await (await fetch("/v2/virtual_tag_configs")).json()).virtual_tag_configs.length);
  ok(drafted.includes("web=75.15") && drafted.includes("data=100.6") && savedBefore === 0,
    `an unsaved tag is previewed and nothing is saved (${drafted}; ${savedBefore} saved)`);
  await page.click("#vtag-form button[type=submit]");
  await until(async () => (await page.textContent("#allocation-status")).includes("Saved the virtual tag"), "the saved tag");
  await page.waitForSelector("#vtag-preview");
  const allocated = Object.fromEntries((await page.$$eval("#vtag-preview tbody tr", (rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.getAttribute("title") || td.textContent)))).map(([v, a]) => [v, a]));
  ok(allocated.web === "75.15" && allocated.data === "100.6" && allocated["(not tagged)"] === "10",
    `the preview shows each value's exact share and what stays untagged (${JSON.stringify(allocated)})`);
  ok((await page.textContent("#vtag-preview tfoot")).includes("185.75") && (await page.textContent("#vtag-unallocated")).includes("10.00"),
    "the preview's values add up to the total, the untagged part said");
  await shot("10-allocation-preview");
  await page.fill("#m-title", "Requests");
  await page.setInputFiles("#m-file", { name: "requests.csv", mimeType: "text/csv", buffer: Buffer.from("date,amount,label\n2024-09-01,many,\n") });
  await page.click("#metric-form button[type=submit]");
  await until(async () => (await page.textContent("#m-file-err")).includes("line 2"), "the metric file's error");
  const metricsLeft = await page.evaluate(async () => (await (await fetch("/v2/business_metrics")).json()).business_metrics.length);
  ok(metricsLeft === 0, `a refused metric file leaves no metric behind (${metricsLeft})`);
  await page.setInputFiles("#m-file", { name: "requests.csv", mimeType: "text/csv", buffer: Buffer.from("date,amount,label\n2024-09-01,1000,web\n") });
  await page.click("#metric-form button[type=submit]");
  await until(async () => (await page.$("#metrics-table")) && (await page.textContent("#metrics-table")).includes("Requests"), "the metric");
  ok(true, "a business metric is uploaded from the page");
  await page.setInputFiles("#x-file", { name: "rates.csv", mimeType: "text/csv", buffer: Buffer.from("USD,EUR,1,2024-13-01\n") });
  await page.click("#rates-form button[type=submit]");
  await until(async () => (await page.textContent("#x-file-err")).includes("line 1"), "the rates file's error");
  ok(true, "a bad rates file is refused naming its line");
  await page.setInputFiles("#x-file", { name: "rates.csv", mimeType: "text/csv", buffer: Buffer.from("USD,EUR,0.5,2024-01-01\n") });
  await page.click("#rates-form button[type=submit]");
  await until(async () => (await page.$("#rates-table")) && (await page.textContent("#rates-table")).includes("0.5"), "the rate")
    .catch(async (e) => { throw new Error(`${e.message}; the page says: ${(await page.textContent("main")).slice(-900)}`); });
  ok(true, "exchange rates are uploaded from the page");
  await shot("10-allocation");
  // The virtual tag groups the costs page.
  await page.click("a[href='#/costs']");
  await page.waitForSelector("#costs-chart");
  await setRange("2024-09-01", "2024-09-30");
  await page.selectOption("#c-bin", "month");
  await page.selectOption("#c-groupings", "tag:team");
  await until(async () => { const t = await page.textContent("#costs-table"); return t.includes("web") && t.includes("75.15"); }, "costs by the virtual tag")
    .catch(async (e) => { throw new Error(`${e.message}; the table says: ${(await page.textContent("#costs-table")).slice(0, 900)}`); });
  ok(true, "the costs page groups by the virtual tag");
  // A saved tag edited from the page: the edit previewed (the saved split still in force), then saved.
  await page.click("a[href='#/allocation']");
  await page.waitForSelector("#vtags-table");
  const tokensBefore = await page.evaluate(async () => (await (await fetch("/v2/virtual_tag_configs")).json()).virtual_tag_configs[0].values.map((v) => v.token).join());
  await page.click("button[aria-label='Edit team']");
  ok((await page.inputValue("#vt-value-0-shares")) === "web=60, data=40" && (await page.inputValue("#vt-value-1-name")) === "data",
    "editing fills the form with the saved values");
  await page.fill("#vt-value-0-shares", "web=50, data=50");
  await page.click("#vt-preview-draft");
  await until(async () => (await page.$("#vtag-preview")) && (await page.textContent("#vtag-preview-area")).includes("not saved"), "the edit's preview");
  const editedShares = await page.$$eval("#vtag-preview tbody tr", (rows) => rows.map((r) => r.querySelector("td").textContent + "=" + r.querySelector("td.num").getAttribute("title")));
  const stillWeb = await page.evaluate(async () => (await (await fetch("/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=tag:team&filter=" +
    encodeURIComponent("tags.name = 'team' AND tags.value = 'web'"))).json()).total_cost.amount);
  ok(editedShares.includes("web=62.625") && editedShares.includes("data=113.125") && stillWeb === "75.15",
    `an edit is previewed while the saved split stays in force (${editedShares}; web ${stillWeb})`);
  await page.click("#vtag-form button[type=submit]");
  await until(async () => (await page.textContent("#allocation-status")).includes("Saved the virtual tag"), "the edited tag saved");
  const edited = await page.evaluate(async () => (await (await fetch("/v2/virtual_tag_configs")).json()).virtual_tag_configs);
  ok(edited.length === 1 && edited[0].values.length === 2 && edited[0].values[0].percentages.map((p) => `${p.value}=${p.pct}`).join(",") === "web=50,data=50"
    && edited[0].values.map((v) => v.token).join() === tokensBefore,
    `the edit is saved in place, its values keeping their tokens (${JSON.stringify(edited.map((t) => t.values))})`);
  await shot("10-allocation-edited");
  // A workspace in euros: September's costs at half, then back to dollars.
  await page.waitForSelector("#currency-form");
  await page.fill("#w-currency", "EUR");
  await page.check("#currency-form input[type=checkbox]");
  await page.click("#currency-form button[type=submit]");
  await until(async () => (await page.textContent("#allocation-status")).includes("EUR"), "the saved currency");
  const euros = await page.evaluate(async () => (await (await fetch("/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service")).json()).total_cost);
  ok(euros.amount === "92.88" && euros.currency === "EUR", `the workspace shows September in euros (${JSON.stringify(euros)})`);
  await page.fill("#w-currency", "USD");
  await page.uncheck("#currency-form input[type=checkbox]");
  await page.click("#currency-form button[type=submit]");
  await until(async () => (await page.textContent("#allocation-status")).includes("USD"), "the currency back in dollars");

  // ---- Writes need the CSRF header even with the cookie.
  const forged = await page.evaluate(async () => (await fetch("/v2/billing_rules", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type: "adjustment", title: "forged", percentage: 1 }) })).status);
  ok(forged === 403, `a cookie write without the CSRF header is refused (${forged})`);

  // ---- Sign out: the cookie no longer opens the API.
  await page.click("#sign-out");
  await page.waitForSelector("form.signin");
  const after = await page.evaluate(async () => (await fetch("/v2/me")).status);
  ok(after === 401, "after signing out the API answers 401");

  // ---- A read-only token sees costs but no forms that write.
  await page.fill("#token", readToken);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector("#costs-chart");
  await page.click("a[href='#/rules']");
  await page.waitForSelector("#rules-table");
  ok(!(await page.isVisible("#rule-form")), "a read-only token gets no rule form");
  await page.click("a[href='#/integrations']");
  await page.waitForSelector("section[data-integration]");
  ok(!(await page.isVisible(".drop")), "a read-only token gets no upload area");

  // ---- Keyboard: the sections are reachable by Tab from the top.
  await page.goto(base + "/?reload=1#/costs");
  await page.waitForSelector("#costs-chart");
  await page.keyboard.press("Tab");
  const skip = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  ok(skip === "Skip to content", `the first Tab reaches the skip link (${skip})`);
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  ok(focused === "Costs", `Tab reaches the section links (${focused})`);

  ok(pageErrors.length === 0, `no script errors on any page (${pageErrors.join("; ")})`);
  console.log(`console: ${checks} checks passed`);
} finally {
  await browser.close();
}
