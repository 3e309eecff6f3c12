// Vantage's TypeScript client (@vantage-sh/vantage-client), unmodified, against costd.
//
// Drives every endpoint costd implements with only the base URL changed, and checks the answers a user
// would rely on: exact amounts, rules applied for a managed account, errors as VantageAPIError with their
// messages. Run by tests/clients/run.sh, which starts costd and sets COSTD_URL, COSTD_TOKEN, COSTD_BIN,
// COSTD_DATA_DIR and COSTD_DATABASE_URL.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { APIV2Client, VantageAPIError } from "@vantage-sh/vantage-client";

const URL = process.env.COSTD_URL;
const SAMPLE = process.env.COSTD_FOCUS_SAMPLE;
const SMALL = `ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId
Usage,2024-07-05,100,EC2,us-east-1
Tax,2024-07-06,10,EC2,us-east-1
Usage,2024-07-07,50.5,S3,eu-west-1
`;
const JULY = { start_date: "2024-07-01", end_date: "2024-07-31" };
let checks = 0;

function check(cond, what) {
  checks += 1;
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function expectError(status, fn, contains = "") {
  try {
    await fn();
  } catch (e) {
    check(e instanceof VantageAPIError, `a VantageAPIError, got ${e}`);
    check(e.status === status, `expected ${status}, got ${e.status}: ${e.body}`);
    check(Array.isArray(e.errors) && e.errors.length > 0, `errors in ${e.body}`);
    check(e.errors.join(" | ").includes(contains), `expected ${contains} in ${e.errors}`);
    return e;
  }
  throw new Error(`expected a ${status}`);
}

function costdCli(args) {
  args = [...args, "--data-dir", process.env.COSTD_DATA_DIR];
  if (process.env.COSTD_DATABASE_URL) args.push("--database-url", process.env.COSTD_DATABASE_URL);
  return execFileSync(process.env.COSTD_BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
}

function mint(account, scope) {
  return costdCli(["token", "create", "--account", account, "--scope", scope]);
}

const client = new APIV2Client(process.env.COSTD_TOKEN, false, URL);

// ping, me
await client.ping.get();
const me = await client.me.get();
check(me.default_workspace_token.startsWith("wrkspc_"), `me ${JSON.stringify(me)}`);
check([...me.bearer_token.scope].sort().join() === "read,write", "scopes");

// workspaces
let ws = await client.workspaces.create({ name: "Node WS" });
check(ws.name === "Node WS", "create workspace");
check((await client.workspaces.get(ws.token)).token === ws.token, "get workspace");
ws = await client.workspaces.update(ws.token, { name: "Node WS 2" });
check(ws.name === "Node WS 2", "update workspace");
check((await client.workspaces.list({})).workspaces.some((w) => w.token === ws.token), "list workspaces");
await client.workspaces.delete(ws.token);
await expectError(404, () => client.workspaces.get(ws.token));

// integrations and uploads (FormData with the client's own bare multipart Content-Type)
const small = await client.integrations.createCustomProviderIntegration({ name: "Node small", description: "d" });
const sample = await client.integrations.createCustomProviderIntegration({ name: "Node sample" });
// An upload into another account's integration is a 404 the client reads, though costd answers before the
// client has sent its 20 MB (Node's fetch once saw only EPIPE, "fetch failed").
const stranger = new APIV2Client(mint(costdCli(["account", "create", "--name", "Node stranger"]), "read,write"), false, URL);
const theirs = await stranger.integrations.createCustomProviderIntegration({ name: "Theirs" });
const big = SMALL + "\n".repeat(20 * 1024 * 1024);
await expectError(404, () =>
  client.integrations.createUserCostsUploadViaCsv(theirs.token, { csv: new File([big], "big.csv", { type: "text/csv" }) }),
);
await expectError(401, () =>
  new APIV2Client("no-such-token", false, URL).integrations.createUserCostsUploadViaCsv(theirs.token, {
    csv: new File([big], "big.csv", { type: "text/csv" }),
  }),
);
check(small.provider === "custom_provider" && small.status === "imported", "create integration");
const listed = (await client.integrations.list({ provider: "custom_provider" })).integrations.map((i) => i.token);
check(listed.includes(small.token) && listed.includes(sample.token), "list integrations");
check((await client.integrations.get(small.token)).account_identifier === "Node small", "get integration");
// Bucket integrations: Vantage's createAzureIntegration body alone does not say where the export is; with the
// export's location added (the client sends the object as it is given), the integration is created.
await expectError(400, () => client.integrations.createAzureIntegration({ tenant: "t", app_id: "a", password: "p" }), "storage_account is required");
const azure = await client.integrations.createAzureIntegration({
  tenant: "00000000-0000-0000-0000-000000000000", app_id: "app", password: "node-secret-password",
  storage_account: "costexports", container: "exports", root_folder_path: "costs", endpoint: "http://127.0.0.1:9/costexports",
});
check(azure.provider === "azure" && azure.status === "pending" && azure.account_identifier === "costexports/exports/costs", "create azure integration");
check(!JSON.stringify(await client.integrations.get(azure.token)).includes("node-secret-password"), "azure secret never read back");
await client.integrations.delete(azure.token);
await expectError(400, () => client.integrations.createGCPIntegration({ billing_account_id: "b", project_id: "p", dataset_name: "d" }), "BigQuery");
const updated = await client.integrations.update(small.token, { workspace_tokens: [me.default_workspace_token] });
check(updated.workspace_tokens[0] === me.default_workspace_token, "update integration");

const up = await client.integrations.createUserCostsUploadViaCsv(small.token, {
  csv: new File([SMALL], "small.csv", { type: "text/csv" }),
  auto_transform: false,
});
check(up.amount === "160.5" && up.filename === "small.csv", `upload ${JSON.stringify(up)}`);
const focus = await client.integrations.createUserCostsUploadViaCsv(sample.token, {
  csv: new Blob([readFileSync(SAMPLE)]),
});
check(focus.amount === "20.52022672899", `FOCUS sample ${focus.amount}`);
check((await client.integrations.getUserCostsUploads(small.token)).user_costs_uploads.length === 1, "list uploads");
const bad = await expectError(
  422,
  () =>
    client.integrations.createUserCostsUploadViaCsv(small.token, {
      csv: new File(["ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-07-0é,1,EC2\n"], "bad.csv"),
    }),
  "Row 1",
);
check(bad.errors[0].includes("ChargePeriodStart"), `${bad.errors}`);

// billing rules
const rules = [];
for (const body of [
  { type: "exclusion", title: "No tax", charge_type: "Tax" },
  { type: "adjustment", title: "75%", percentage: 75 },
  { type: "custom", title: "Double EU", sql_query: "UPDATE costs SET amount = amount * 2 WHERE region = 'eu-west-1'" },
  { type: "credit", title: "Credit", service: "Support", category: "Credit", sub_category: "Monthly", amount: 10, start_date: "2024-07-01" },
  { type: "charge", title: "Fee", service: "MSP", category: "Fee", sub_category: "Monthly", amount: 5, start_date: "2024-07-01", end_date: "2024-12-31" },
]) {
  rules.push(await client.billingRules.create(body));
}
check(rules.map((r) => r.type).join() === "Exclusion,Adjustment,Custom,Credit,Charge", "rule types");
check((await client.billingRules.get(rules[0].token)).charge_type === "Tax", "get rule");
check((await client.billingRules.update(rules[0].token, { title: "No tax at all" })).title === "No tax at all", "update rule");
check((await client.billingRules.list({ limit: 2 })).billing_rules.length === 2, "list rules");
await expectError(
  400,
  () => client.billingRules.create({ type: "custom", title: "bad", sql_query: "INSERT INTO costs (amount) VALUES ('abc')" }),
  "amount is a number",
);

// managed accounts
let managed = await client.managedAccounts.create({
  name: "Node Acme",
  contact_email: "ops@acme.example",
  access_credential_tokens: [small.token],
  billing_rule_tokens: rules.map((r) => r.token),
});
check(managed.billing_rule_tokens.join() === rules.map((r) => r.token).join(), "create managed");
check((await client.managedAccounts.get(managed.token)).access_credential_tokens[0] === small.token, "get managed");
managed = await client.managedAccounts.update(managed.token, { name: "Node Acme Inc" });
check(managed.name === "Node Acme Inc", "update managed");
check((await client.managedAccounts.list({})).managed_accounts.some((m) => m.token === managed.token), "list managed");

// costs, raw for the parent
const costs = await client.costs.list({ ...JULY, groupings: ["service"], date_bin: "month", order: "asc" });
check(costs.total_cost.amount === "160.5", `parent total ${JSON.stringify(costs.total_cost)}`);
check(costs.costs.map((c) => `${c.service}=${c.amount}`).join() === "EC2=110.0,S3=50.5", JSON.stringify(costs.costs));
const sept = await client.costs.list({
  start_date: "2024-09-01",
  end_date: "2024-09-30",
  groupings: ["provider", "service"],
  "settings[include_credits]": true,
  "settings[amortize]": false,
});
check(sept.total_cost.amount === "20.52", `sample total ${sept.total_cost.amount}`);
// Amortized (FOCUS EffectiveCost), Vantage's default.
const amortized = await client.costs.list({ start_date: "2024-09-01", end_date: "2024-09-30", "settings[include_credits]": true });
check(amortized.total_cost.amount === "14.98", `amortized sample total ${amortized.total_cost.amount}`);

// Discovery: what the uploads hold (the FOCUS sample's tags: application, environment, business_unit).
check((await client.costProviders.list({})).cost_providers[0].key === "custom_provider", "cost providers");
check((await client.costServices.list({})).cost_services.some((s) => s.name === "EC2"), "cost services");
const tagKeys = (await client.tags.list({ search_query: "environ" })).tags.map((t) => t.tag_key);
check(tagKeys.join() === "environment", `tags ${tagKeys}`);
const envValues = (await client.tags.getValues("environment", {})).tag_values.map((v) => v.tag_value);
check(envValues.includes("prod"), `tag values ${envValues}`);
await expectError(404, () => client.tags.getValues("no/such key", {}), "no costs carry");

// A data export of July by service, polled until done, its CSV fetched with the token.
const location = await client.costs.createExport({ start_date: "2024-07-01", end_date: "2024-07-31", date_bin: "month", groupings: ["service"] });
check(typeof location === "string" && location.includes("/v2/data_exports/dta_xprt_"), `location ${location}`);
let dataExport;
for (let i = 0; i < 200; i++) {
  dataExport = await client.dataExports.get(location.split("/").pop());
  if (dataExport.status !== "pending") break;
  await new Promise((r) => setTimeout(r, 50));
}
check(dataExport.status === "completed", JSON.stringify(dataExport));
const exported = await (await fetch(dataExport.manifest.files[0], { headers: { Authorization: `Bearer ${process.env.COSTD_TOKEN}` } })).text();
check(exported === "accrued_at,service,amount,currency\n2024-07-01,EC2,110.0,USD\n2024-07-01,S3,50.5,USD\n", `export ${JSON.stringify(exported)}`);

// Saved filters, folders and cost reports; costs runs a report (July: EC2 100 + tax 10).
const ec2 = await client.savedFilters.create({ title: "EC2 only", filter: "costs.service = 'EC2'" });
const folder = await client.folders.create({ title: "FinOps", saved_filter_tokens: [ec2.token] });
const report = await client.costReports.create({
  title: "July EC2",
  folder_token: folder.token,
  groupings: "service",
  start_date: "2024-07-01",
  end_date: "2024-07-31",
  date_bin: "month",
});
check(report.token.startsWith("rprt_") && report.date_interval === "custom", JSON.stringify(report));
const ran = await client.costs.list({ cost_report_token: report.token });
check(ran.total_cost.amount === "110.0" && ran.costs.length === 1, JSON.stringify(ran));
const monthly = await client.costReports.update(report.token, { date_interval: "last_month", filter: "costs.charge_type = 'Usage'" });
check(monthly.date_interval === "last_month" && monthly.start_date === null, JSON.stringify(monthly));
check((await client.costs.list({ cost_report_token: report.token, ...JULY })).total_cost.amount === "100.0", "report + dates");
check((await client.costReports.get(report.token)).folder_token === folder.token, "get report");
const forecast = await client.costReports.getForecastedCosts(report.token, {
  start_date: "2024-08-01",
  end_date: "2024-08-03",
  provider: "all",
  service: "all",
});
check(forecast.forecasted_costs.map((f) => f.amount).join() === "0.0,25.0,0.0", JSON.stringify(forecast));
check((await client.costReports.list({ folder_token: folder.token })).cost_reports.length === 1, "list reports");
check((await client.savedFilters.get(ec2.token)).cost_report_tokens.length === 0, "folder filters are not the report's");
check((await client.savedFilters.update(ec2.token, { title: "EC2" })).title === "EC2", "update saved filter");
check((await client.folders.get(folder.token)).title === "FinOps", "get folder");
check((await client.folders.list({})).folders.length === 1, "list folders");
check((await client.savedFilters.list({})).saved_filters.length === 1, "list saved filters");
// A budget on the report and an alert on the budget (the client has no budgets.get: list finds it).
const budget = await client.budgets.create({
  name: "EC2",
  cost_report_token: report.token,
  periods: [{ start_at: "2024-07-01", amount: 120.5 }],
});
check(budget.token.startsWith("bdgt_") && budget.periods[0].amount === "120.5" && budget.periods[0].end_at.startsWith("2024-07-31"), JSON.stringify(budget));
const budgetAlert = await client.budgetAlerts.create({ budget_tokens: [budget.token], threshold: 80, duration_in_days: "", recipient_channels: ["https://hooks.slack.com/services/T0/B0/x"] });
check(budgetAlert.threshold === 80 && budgetAlert.duration_in_days === null, JSON.stringify(budgetAlert));
check((await client.budgets.list({})).budgets.find((b) => b.token === budget.token).budget_alert_tokens[0] === budgetAlert.token, "budget_alert_tokens");
check((await client.budgetAlerts.get(budgetAlert.token)).recipient_channels.length === 1, "get budget alert");
// Users: added by the operator (costd user add), listed by the client, named by user_tokens.
const userArgs = ["user", "add", "--account", process.env.COSTD_ACCOUNT, "--email", "ben@example.com", "--data-dir", process.env.COSTD_DATA_DIR];
if (process.env.COSTD_DATABASE_URL) userArgs.push("--database-url", process.env.COSTD_DATABASE_URL);
const ben = execFileSync(process.env.COSTD_BIN, userArgs, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
const users = (await client.users.list({})).users;
check(users.length === 1 && users[0].token === ben && users[0].email === "ben@example.com" && users[0].role === "Admin", JSON.stringify(users));
check((await client.users.get(ben)).email === "ben@example.com", "get user");
check((await client.budgetAlerts.update(budgetAlert.token, { user_tokens: [ben] })).user_tokens[0] === ben, "a user as a budget alert's recipient");
await expectError(400, () => client.budgetAlerts.update(budgetAlert.token, { user_tokens: ["usr_0000000000000000"] }), "user_tokens[0]");
check((await client.budgetAlerts.update(budgetAlert.token, { period_to_track: "end_of_the_month", duration_in_days: "5" })).duration_in_days === 5, "update budget alert");
check((await client.budgets.update(budget.token, { periods: [{ start_at: "2024-07-01", end_at: "2024-07-15", amount: 60 }] })).periods[0].end_at.startsWith("2024-07-15"), "update budget");
await expectError(400, () => client.budgetAlerts.create({ budget_tokens: [budget.token], threshold: 50, duration_in_days: "", recipient_channels: ["#finance"] }), "recipient_channels[0]");
const jump = await client.costAlerts.create({ title: "Daily jump", interval: "day", threshold: 100, unit_type: "currency", workspace_token: report.workspace_token, report_tokens: [report.token], teams_channels: ["https://example.webhook.office.com/webhookb2/x"] });
check(jump.token.startsWith("cst_alrt_") && jump.threshold === 100 && jump.minimum_threshold === null, JSON.stringify(jump));
check((await client.costAlerts.getEvents(jump.token, {})).cost_alert_events.length === 0, "no cost alert events yet");
check((await client.costAlerts.update(jump.token, { unit_type: "percentage", minimum_threshold: 5 })).minimum_threshold === 5, "update cost alert");
await expectError(400, () => client.costAlerts.create({ title: "x", interval: "day", threshold: 1, unit_type: "currency", workspace_token: report.workspace_token, report_tokens: [report.token], slack_channels: ["#finops"] }), "slack_channels[0]");
await client.costAlerts.delete(jump.token);
const watch = await client.anomalyNotifications.create({ cost_report_token: report.token, threshold: 25, recipient_channels: ["https://example.webhook.office.com/webhookb2/y"] });
check(watch.token.startsWith("anmly_ntfctn_") && watch.threshold === 25, JSON.stringify(watch));
check((await client.anomalyNotifications.get(watch.token)).cost_report_token === report.token, "get anomaly notification");
check((await client.anomalyNotifications.update(watch.token, { threshold: 40 })).threshold === 40, "update anomaly notification");
check((await client.anomalyNotifications.list({})).anomaly_notifications.map((n) => n.token).join() === watch.token, "list anomaly notifications");
check((await client.anomalyAlerts.list({})).anomaly_alerts.length === 0, "no anomaly alerts without history");
await expectError(400, () => client.anomalyNotifications.create({ cost_report_token: report.token, recipient_channels: ["#finops"] }), "recipient_channels[0]");
await client.anomalyNotifications.delete(watch.token);
await expectError(404, () => client.anomalyNotifications.get(watch.token));
await client.budgetAlerts.delete(budgetAlert.token);
await client.budgets.delete(budget.token);
await expectError(400, () => client.costReports.create({ title: "bad", date_bin: "hour" }), "date_bin");
await expectError(409, () => client.folders.delete(folder.token), "move or delete");
await client.costReports.delete(report.token);
await expectError(404, () => client.costReports.get(report.token));
await client.folders.delete(folder.token);
await client.savedFilters.delete(ec2.token);
const paged = await client.costs.list({ ...JULY, groupings: ["service", "region"], limit: 1, page: 2 });
check(paged.costs.length === 1 && paged.links.prev && paged.links.next, JSON.stringify(paged.links));
await expectError(400, () => client.costs.list({ ...JULY, groupings: ["owner"] }), "unknown grouping");

// costs as the managed account sees them (see the Python scenario for the arithmetic)
const mine = new APIV2Client(mint(managed.token, "read"), false, URL);
check((await mine.costs.list({ ...JULY, groupings: ["service"] })).total_cost.amount === "155.75", "managed total");
const withCredits = await mine.costs.list({ ...JULY, "settings[include_credits]": true });
check(withCredits.total_cost.amount === "145.75", `with credits ${withCredits.total_cost.amount}`);
await expectError(403, () => mine.billingRules.create({ type: "exclusion", title: "x", charge_type: "Tax" }));
await expectError(404, () => mine.integrations.get(small.token));

// invoicing: a billing profile, the managed account linked to it, an invoice of July (145.75 with every kind
// of cost, plus 5 % tax = 153.0375 → 153.04), its files through signed links, sending when SMTP is there
const profile = await client.billingProfiles.create({
  nickname: "Node US",
  billing_information_attributes: { company_name: "Node MSP Inc", country_code: "US", billing_email: ["b@nodemsp.example"] },
  invoice_adjustment_attributes: {
    adjustment_items: [{ name: "Sales tax", adjustment_type: "charge", calculation_type: "percentage", amount: 5 }],
  },
});
check(profile.token.startsWith("bllng_prfl_") && profile.managed_accounts_count === "0", `profile ${JSON.stringify(profile)}`);
check((await client.billingProfiles.update(profile.token, { nickname: "Node US 2" })).nickname === "Node US 2", "update profile");
check((await client.billingProfiles.list({})).billing_profiles.some((p) => p.token === profile.token), "list profiles");
const linked = await client.managedAccounts.update(managed.token, {
  msp_billing_profile_token: profile.token,
  billing_information_attributes: { company_name: "Node Acme", billing_email: ["ap@nodeacme.example"] },
});
check(linked.msp_billing_profile_token === profile.token && linked.payment_terms_days === 10, "linked");
const invoice = await client.invoices.create({
  account_token: managed.token,
  billing_period_start: "2024-07-01",
  billing_period_end: "2024-07-31",
});
check(invoice.total === "153.04" && invoice.status === "draft", `invoice ${JSON.stringify(invoice)}`);
check((await client.invoices.get(invoice.token)).invoice_number === invoice.invoice_number, "get invoice");
check((await client.invoices.list({ managed_account_token: managed.token })).invoices.length === 1, "list invoices");
check((await client.invoices.regenerateInvoice(invoice.token)).total === "153.04", "regenerate");
const pdfUrl = (await client.invoices.downloadInvoice(invoice.token, { file_type: "pdf" })).download_url;
const pdf = Buffer.from(await (await fetch(pdfUrl)).arrayBuffer());
check(pdf.subarray(0, 5).toString() === "%PDF-", "a PDF");
const csvUrl = (await client.invoices.downloadInvoice(invoice.token, { file_type: "csv" })).download_url;
check((await (await fetch(csvUrl)).text()).trim().endsWith("153.04,USD,153.04"), "the CSV total");
check((await client.invoices.getCostReport(invoice.token)).cost_report_url.includes("/cost_report.csv?"), "cost report");
await expectError(400, () => client.invoices.create({ account_token: managed.token, billing_period_start: "2024-13-01", billing_period_end: "2024-07-31" }), "billing_period_start");
if (process.env.COSTD_SMTP_MAILDIR) {
  check((await client.invoices.sendInvoice(invoice.token)).recipients[0] === "ap@nodeacme.example", "sent");
  await expectError(409, () => client.invoices.regenerateInvoice(invoice.token), "cannot be regenerated");
  await client.invoices.sendAndApproveInvoice(invoice.token);
  check((await client.invoices.get(invoice.token)).status === "approved", "approved");
}
await client.managedAccounts.update(managed.token, { msp_billing_profile_token: "" });
await client.billingProfiles.delete(profile.token);

// Virtual tags: EC2 split 40/60 (July's 110 with its tax), S3 named; values added, patched, deleted.
const vtag = await client.virtualTagConfigs.create({
  key: "node-team", overridable: true,
  values: [{ filter: "costs.service = 'EC2'", percentages: [{ value: "web", pct: 40 }, { value: "data", pct: 60 }] }],
});
check(vtag.token.startsWith("vtag_") && vtag.values[0].percentages[1].pct === 60, `virtual tag ${JSON.stringify(vtag)}`);
const s3 = await client.virtualTagConfigs.createValue(vtag.token, { filter: "costs.service = 'S3'", name: "storage" });
check(s3.token.startsWith("vtag_val_") && s3.name === "storage", `value ${JSON.stringify(s3)}`);
check((await client.virtualTagConfigs.getValue(vtag.token, s3.token)).filter === "costs.service = 'S3'", "get value");
const byTeam = await client.costs.list({ ...JULY, groupings: ["tag:node-team"], date_bin: "month" });
const teamAmounts = Object.fromEntries(byTeam.costs.map((c) => [c["tag:node-team"], c.amount]));
check(teamAmounts.web === "44.0" && teamAmounts.data === "66.0" && teamAmounts.storage === "50.5" && byTeam.total_cost.amount === "160.5",
  `costs by a virtual tag ${JSON.stringify(byTeam.costs)}`);
const patched = await client.virtualTagConfigs.updateValue(vtag.token, s3.token, { name: "blob" });
check(patched.name === "blob" && patched.token === s3.token, "patch value");
check((await client.virtualTagConfigs.getStatus(vtag.token)).processing === false, "virtual tag status");
const asyncUpdate = await client.virtualTagConfigs.updateAsyncVirtualTagConfig(vtag.token, { overridable: false });
check(asyncUpdate.status_url === `/v2/virtual_tag_configs/async/${asyncUpdate.request_id}`, `async update ${JSON.stringify(asyncUpdate)}`);
check(await client.virtualTagConfigs.getAsyncVirtualTagConfigStatus(asyncUpdate.request_id) === true, "the async update is applied");
check(await client.virtualTagConfigs.getAsyncVirtualTagConfigStatus("no-such-request") === false, "an unknown request is not done");
await expectError(400, () => client.virtualTagConfigs.updateValue(vtag.token, s3.token, { filter: "costs.nope = 1" }), "filter");
await client.virtualTagConfigs.deleteValue(vtag.token, s3.token);
check((await client.virtualTagConfigs.get(vtag.token)).values.length === 1, "value deleted");
check((await client.virtualTagConfigs.list({})).virtual_tag_configs.some((t) => t.key === "node-team"), "list virtual tags");
await client.virtualTagConfigs.delete(vtag.token);
await expectError(404, () => client.virtualTagConfigs.get(vtag.token));

// exchange rates and a workspace converting to EUR (July's dollars at half)
await client.exchangeRates.createViaCsv({ csv: new File(["USD,EUR,0.5,2024-01-01\n"], "rates.csv", { type: "text/csv" }) });
const rates = (await client.exchangeRates.list({})).exchange_rates;
check(rates.some((r) => r.base_currency_code === "USD" && r.currency_code === "EUR" && r.rate === "0.5"), `rates ${JSON.stringify(rates)}`);
await expectError(400, () => client.exchangeRates.createViaCsv({ csv: new File(["USD,EUR,1,2024-13-01\n"], "r.csv") }), "line 1: date");
// The default workspace (which holds the July upload) shown in EUR, then back to USD without conversion.
const home = me.default_workspace_token;
const plain = await client.costs.list({ ...JULY, workspace_token: home, groupings: ["service"] });
await client.workspaces.update(home, { currency: "EUR", enable_currency_conversion: true });
const converted = await client.costs.list({ ...JULY, workspace_token: home, groupings: ["service"] });
await client.workspaces.update(home, { currency: "USD", enable_currency_conversion: false });
const tenThousandths = (costs) => costs.reduce((sum, c) => sum + Math.round(Number(c.amount) * 10000), 0);
check(plain.costs.length > 0 && converted.costs.every((c) => c.currency === "EUR") && converted.total_cost.currency === "EUR",
  `converted ${JSON.stringify(converted)}`);
check(tenThousandths(converted.costs) * 2 === tenThousandths(plain.costs), `at half: ${JSON.stringify(converted.costs)}`);

// business metrics and unit costs: a report's cost per thousand requests, exact
const perRequest = await client.costReports.create({ title: "S3 per request", filter: "costs.service = 'S3'",
  start_date: "2024-07-01", end_date: "2024-07-31", previous_period_end_date: "2024-06-30" });
const requests = await client.businessMetrics.create({ title: "Node requests",
  cost_report_tokens_with_metadata: [{ cost_report_token: perRequest.token, unit_scale: "per_thousand" }],
  values: [{ date: "2024-07-07", amount: 2000 }] });
check(requests.token.startsWith("bsnss_mtrc_") && requests.cost_report_tokens_with_metadata[0].unit_scale === "per_thousand",
  `business metric ${JSON.stringify(requests)}`);
await client.businessMetrics.updateValuesCSV(requests.token,
  { csv: new File(["date,amount,label\n2024-07-08,2000,web\n2024-09-01,5,web\n"], "values.csv", { type: "text/csv" }), forecasted: "false" });
await expectError(422, () => client.businessMetrics.updateValuesCSV(requests.token,
  { csv: new File(["2024-07-09,1,web\n2024-07-09,2,web\n"], "v.csv") }), "line 2: 2024-07-09");
const webValues = (await client.businessMetrics.getValues(requests.token, { label_values: ["web"], date_bin: "month" })).values;
check(JSON.stringify(webValues.map((v) => [v.date, v.amount, v.label]))
  === JSON.stringify([["2024-09-01T00:00:00Z", "5.0", "web"], ["2024-07-01T00:00:00Z", "2000.0", "web"]]), `values ${JSON.stringify(webValues)}`);
check((await client.businessMetrics.getLabels(requests.token, {})).labels.map((l) => l.value).join() === "web", "labels");
check((await client.businessMetrics.deleteValues(requests.token, { start_date: "2024-09-01" })).deleted_count === 1, "delete values");
const units = (await client.unitCosts.list({ cost_report_token: perRequest.token, date_bin: "month" })).unit_costs;
const s3Cost = (await client.costs.list({ cost_report_token: perRequest.token, date_bin: "month" })).total_cost.amount;
// 4000 requests per thousand: the (positive) cost divided by 4, rounded half up at 18 places, in integers.
const unitUnscaled = (text) => { const [i, f = ""] = text.split("."); return BigInt(i + f.padEnd(18, "0")); };
const quarterOf = (text) => (unitUnscaled(text) + 2n) / 4n;
check(units.length === 1 && unitUnscaled(units[0].unit_cost_amount) === quarterOf(s3Cost) && units[0].business_metric_amount === "4000.0"
  && units[0].scale === 1000, `unit costs ${JSON.stringify(units)} for ${s3Cost}`);
// The same unit costs as a data export's file.
const unitLocation = await client.unitCosts.createExport({ cost_report_token: perRequest.token, date_bin: "month" });
check(typeof unitLocation === "string" && unitLocation.includes("/v2/data_exports/dta_xprt_"), `unit costs export ${unitLocation}`);
let unitExport;
for (let i = 0; i < 200; i++) {
  unitExport = await client.dataExports.get(unitLocation.split("/").pop());
  if (unitExport.status !== "pending") break;
  await new Promise((r) => setTimeout(r, 50));
}
check(unitExport.status === "completed" && unitExport.export_type === "unit_costs", JSON.stringify(unitExport));
const unitLines = (await (await fetch(unitExport.manifest.files[0], { headers: { Authorization: `Bearer ${process.env.COSTD_TOKEN}` } })).text()).trim().split("\n");
check(unitLines.length === 2 && unitLines[1].includes(`,${units[0].unit_cost_amount},4000.0,1000,`), `unit costs CSV ${JSON.stringify(unitLines)}`);
await client.businessMetrics.delete(requests.token);
await expectError(404, () => client.businessMetrics.get(requests.token));
await client.costReports.delete(perRequest.token);

// segments: a parent, a child and the unallocated rest, each with its generated report, adding up exactly
const businessUnits = await client.segments.create({ title: "Node units", filter: "costs.provider = 'custom_provider'",
  track_unallocated: true, report_settings: { include_credits: false } });
check(businessUnits.token.startsWith("fltr_sgmt_") && businessUnits.report_token.startsWith("rprt_") && businessUnits.priority === 100,
  `segment ${JSON.stringify(businessUnits)}`);
const ec2Segment = await client.segments.create({ title: "Node EC2", parent_segment_token: businessUnits.token, priority: 1,
  filter: "costs.service = 'EC2'" });
const unitsRest = (await client.segments.list({})).segments
  .find((s) => s.parent_segment_token === businessUnits.token && s.title === "Unallocated Costs");
check(unitsRest && unitsRest.filter === null, "the unallocated segment");
const segmentTotal = async (s) => (await client.costs.list({ ...JULY, cost_report_token: s.report_token })).total_cost.amount;
const segmentTotals = [await segmentTotal(businessUnits), await segmentTotal(ec2Segment), await segmentTotal(unitsRest)];
check(JSON.stringify(segmentTotals) === JSON.stringify(["160.5", "110.0", "50.5"]), `segment totals ${segmentTotals}`);
check((await client.segments.update(ec2Segment.token, { title: "Node compute" })).title === "Node compute", "update segment");
check((await client.segments.get(ec2Segment.token)).title === "Node compute", "get segment");
await expectError(400, () => client.segments.update(ec2Segment.token, { filter: "costs.nope = 1" }), "filter");
await expectError(409, () => client.costReports.delete(ec2Segment.report_token), "/v2/segments/");
await expectError(409, () => client.segments.delete(businessUnits.token), ec2Segment.token);
await client.segments.delete(ec2Segment.token);
await client.segments.delete(businessUnits.token);
await expectError(404, () => client.segments.get(businessUnits.token));

// deletes
await client.integrations.deleteUserCostsUpload(small.token, up.token);
check((await client.costs.list(JULY)).total_cost.amount === "0.0", "costs after deleting the upload");
await client.managedAccounts.delete(managed.token);
for (const r of rules) await client.billingRules.delete(r.token);
await client.integrations.delete(small.token);
await client.integrations.delete(sample.token);
await expectError(404, () => client.billingRules.get(rules[0].token));
// The audit log: each rule's delete is an entry of this token, its last title before and nothing after.
const deleted = (await client.auditLogs.list({ action: "delete", object_type: "billing_rule", limit: 100 })).audit_logs;
check(rules.every((r) => deleted.some((e) => e.object_token === r.token))
  && deleted.every((e) => e.event === "record_destroyed" && e.source === "api"), `audit log of the deletes ${JSON.stringify(deleted[0])}`);
const entry = await client.auditLogs.get(deleted[0].token);
check(entry.token === deleted[0].token && entry.changed_values.title[1] === null, `one audit log ${JSON.stringify(entry)}`);
await expectError(401, () => new APIV2Client("cstd_not_a_token", false, URL).me.get());
const version = JSON.parse(readFileSync("node_modules/@vantage-sh/vantage-client/package.json", "utf8")).version;
console.log(`node client (@vantage-sh/vantage-client ${version}): ${checks} checks passed`);
