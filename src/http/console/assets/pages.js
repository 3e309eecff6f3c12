// The console's pages. Each is `async (main, params) => void`: it draws into `main` from the API.
export const pages = {};
import { api, get, getAll, nextPath, upload, session, ApiError } from "./api.js";
import { historyChart, stackedBars } from "./chart.js";

/** Makes an element: h("button", {class: "x", onclick: f}, "text", child…). */
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = !!v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

const writable = () => session.info && !session.info.view_account_token && session.info.scope.includes("write");

/** A labelled field with its own error line; `names` are the API field names whose errors land here. */
function field(id, label, input, names) {
  input.id = id;
  const err = h("p", { class: "err", id: `${id}-err`, role: "alert" });
  input.setAttribute("aria-describedby", `${id}-err`);
  const wrap = h("div", { class: "field", "data-fields": (names || [id]).join(" ") }, h("label", { for: id }, label), input, err);
  return wrap;
}

/** Puts each API error at the field it names (its first word), the rest at the form's own error line. */
function showErrors(form, errors) {
  for (const e of form.querySelectorAll(".err, .form-err")) e.textContent = "";
  const general = [];
  for (const msg of errors) {
    const first = (msg.match(/^[A-Za-z_\[\]\.]+/) || [""])[0].replace(/[\[\.].*$/, "");
    const wrap = [...form.querySelectorAll(".field[data-fields]")].find((f) => f.dataset.fields.split(" ").includes(first) && !f.hidden);
    if (wrap) {
      const err = wrap.querySelector(".err");
      err.textContent = err.textContent ? `${err.textContent}\n${msg}` : msg;
    } else general.push(msg);
  }
  const g = form.querySelector(".form-err");
  if (g) g.textContent = general.join("\n");
  const firstErr = [...form.querySelectorAll(".err, .form-err")].find((e) => e.textContent);
  if (firstErr) {
    const input = firstErr.parentElement.querySelector("input, select, textarea");
    (input || firstErr).focus?.();
  }
}

function clearErrors(form) { for (const e of form.querySelectorAll(".err, .form-err")) e.textContent = ""; }

function errorText(x) { return x instanceof ApiError ? x.errors.join("\n") : String(x && x.message || x); }

function iso(d) { return d.toISOString().slice(0, 10); }
function addDays(s, n) { const d = new Date(s + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return iso(d); }
function daysBetween(a, b) { return Math.round((new Date(b + "T00:00:00Z") - new Date(a + "T00:00:00Z")) / 86400000); }

function addMonths(s, n) {
  const [y, m, d] = s.split("-").map(Number);
  const last = new Date(Date.UTC(y, m - 1 + n + 1, 0)).getUTCDate();
  return iso(new Date(Date.UTC(y, m - 1 + n, Math.min(d, last))));
}

/** The first day of the date bin holding `s` (weeks start on Monday, as the API bins them). */
export function binStart(s, bin) {
  const [y, m] = s.split("-").map(Number);
  switch (bin) {
    case "week": { const wd = (new Date(s + "T00:00:00Z").getUTCDay() + 6) % 7; return addDays(s, -wd); }
    case "month": return iso(new Date(Date.UTC(y, m - 1, 1)));
    case "quarter": return iso(new Date(Date.UTC(y, Math.floor((m - 1) / 3) * 3, 1)));
    default: return s;
  }
}

/** Every bin of a range, so days without costs still take their place on the chart. */
export function allBins(start, end, bin) {
  const out = [];
  for (let b = binStart(start, bin), i = 0; b <= end && i < 2000; i++) {
    out.push(b);
    b = bin === "day" ? addDays(b, 1) : bin === "week" ? addDays(b, 7) : addMonths(b, bin === "month" ? 1 : 3);
  }
  return out;
}

/**
 * The period before [start, end]: as many whole months when the range is whole months, else as many days.
 * `shift` moves a date of it forward onto the range.
 */
export function previousPeriod(start, end) {
  if (start.endsWith("-01") && addDays(end, 1).endsWith("-01")) {
    const [sy, sm] = start.split("-").map(Number), [ey, em] = end.split("-").map(Number);
    const months = (ey - sy) * 12 + (em - sm) + 1;
    return { start: addMonths(start, -months), end: addDays(start, -1), shift: (d) => addMonths(d, months) };
  }
  const len = daysBetween(start, end) + 1;
  return { start: addDays(start, -len), end: addDays(start, -1), shift: (d) => addDays(d, len) };
}

/** Date range presets, relative to today (UTC). */
export function presetRange(name, today = iso(new Date())) {
  const [y, m] = today.split("-").map(Number);
  const first = (yy, mm) => iso(new Date(Date.UTC(yy, mm - 1, 1)));
  const last = (yy, mm) => iso(new Date(Date.UTC(yy, mm, 0)));
  switch (name) {
    case "this_month": return [first(y, m), last(y, m)];
    case "last_month": return [first(y, m - 1), last(y, m - 1)];
    case "last_30_days": return [addDays(today, -29), today];
    case "last_3_months": return [first(y, m - 2), last(y, m)];
    case "last_6_months": return [first(y, m - 5), last(y, m)];
    case "this_year": return [first(y, 1), last(y, 12)];
    case "last_year": return [first(y - 1, 1), last(y - 1, 12)];
    default: return null;
  }
}

const PRESETS = [["this_month", "This month"], ["last_month", "Last month"], ["last_30_days", "Last 30 days"],
  ["last_3_months", "Last 3 months"], ["last_6_months", "Last 6 months"], ["this_year", "This year"],
  ["last_year", "Last year"], ["custom", "Custom"]];
const GROUPINGS = ["service", "provider", "account_id", "billing_account_id", "region", "charge_type",
  "cost_category", "cost_subcategory", "resource_id", "usage_unit", "tagged"];

// Results already fetched in this page's life: going back to an earlier setting answers at once.
const costsCache = new Map();
session.onWrite = () => costsCache.clear();

/** Every row of a costs query (all pages), remembered per view and query; callers asking at once share one fetch. */
function fetchCosts(query) {
  const key = query.toString();
  // The same query asked in another view (a managed account's) is another result.
  const cacheKey = `${session.info.view_account_token || ""}|${key}`;
  if (costsCache.has(cacheKey)) return costsCache.get(cacheKey);
  const pending = (async () => {
    const rows = [];
    let total = null, url = `/v2/costs?${key}&limit=5000`;
    for (let i = 0; url && i < 200; i++) {
      const body = await get(url);
      total = body.total_cost;
      rows.push(...body.costs);
      url = nextPath(body);
    }
    return { total, rows };
  })();
  if (costsCache.size > 50) costsCache.clear();
  costsCache.set(cacheKey, pending);
  pending.catch(() => costsCache.delete(cacheKey));
  return pending;
}

/** Adds exact decimal strings (up to 18 places) with BigInt, for per-bin and per-series sums shown to people. */
export function addDecimals(a, b) {
  const scale = 18n;
  const toInt = (s) => {
    let neg = s.startsWith("-"); if (neg) s = s.slice(1);
    let [i, f = ""] = s.split(".");
    f = (f + "0".repeat(18)).slice(0, 18);
    const v = BigInt(i || "0") * 10n ** scale + BigInt(f || "0");
    return neg ? -v : v;
  };
  const v = toInt(a) + toInt(b);
  const neg = v < 0n, abs = neg ? -v : v;
  const i = abs / 10n ** scale, f = (abs % 10n ** scale).toString().padStart(18, "0").replace(/0+$/, "");
  return (neg ? "-" : "") + i.toString() + (f ? "." + f : "");
}

function money(s) {
  // Two places for reading; the exact value is in the cell's title.
  const n = Number(s);
  return n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

const costsState = {};
let firstCostsPaintDone = false;

pages.costs = async function costsPage(main, params) {
  const st = costsState;
  if (!st.start) {
    st.preset = params.get("preset") || "this_month";
    [st.start, st.end] = presetRange(st.preset === "custom" ? "this_month" : st.preset);
    st.bin = "day"; st.groupings = ["service"]; st.filter = ""; st.workspace = ""; st.previous = false;
    st.report = ""; st.sort = { key: "accrued_at", dir: "desc" };
  }
  for (const k of ["start_date", "end_date"]) if (params.get(k)) { st[k === "start_date" ? "start" : "end"] = params.get(k); st.preset = "custom"; }
  if (params.get("date_bin")) st.bin = params.get("date_bin");
  if (params.get("groupings")) st.groupings = params.get("groupings").split(",");
  if (params.get("report")) st.report = params.get("report");

  const query = () => {
    const q = new URLSearchParams();
    if (st.report) q.set("cost_report_token", st.report);
    q.set("start_date", st.start); q.set("end_date", st.end); q.set("date_bin", st.bin);
    q.set("groupings", st.groupings.join(","));
    if (st.filter.trim()) q.set("filter", st.filter.trim());
    if (st.workspace) q.set("workspace_token", st.workspace);
    q.set("order", "asc");
    return q;
  };
  // The costs query is what a person waits for: ask it first, alongside the lists the controls need.
  fetchCosts(query()).catch(() => {});
  const [me, reports, tags] = await Promise.all([get("/v2/me"), getAll("/v2/cost_reports", "cost_reports").catch(() => []),
    getAll("/v2/tags", "tags").catch(() => [])]);
  // Tag keys (virtual tags among them) group as `tag:<key>`; a grouping from the address is kept.
  const choices = [...GROUPINGS, ...tags.map((t) => `tag:${t.tag_key}`)];
  for (const g of st.groupings) if (!choices.includes(g)) choices.push(g);

  const preset = h("select", {}, PRESETS.map(([v, l]) => h("option", { value: v }, l)));
  preset.value = st.preset;
  const start = h("input", { type: "date", value: st.start, required: true });
  const end = h("input", { type: "date", value: st.end, required: true });
  const bin = h("select", {}, ["day", "week", "month", "quarter"].map((b) => h("option", { value: b }, b)));
  bin.value = st.bin;
  const groupings = h("select", {}, choices.map((g) => h("option", { value: g }, g)));
  groupings.value = st.groupings[0];
  const thenBy = h("select", {}, h("option", { value: "" }, "(nothing)"), choices.map((g) => h("option", { value: g }, g)));
  thenBy.value = st.groupings[1] || "";
  const workspace = h("select", {}, h("option", { value: "" }, "All workspaces"), me.workspaces.map((w) => h("option", { value: w.token }, w.name)));
  workspace.value = st.workspace;
  const filter = h("textarea", { rows: 2, placeholder: "costs.provider = 'custom_provider' AND costs.service = 'Amazon EC2'" }, st.filter);
  filter.value = st.filter;
  const previous = h("input", { type: "checkbox", checked: st.previous });
  const report = h("select", {}, h("option", { value: "" }, "(no report)"), reports.map((r) => h("option", { value: r.token }, r.title)));
  // A report of another view (or a deleted one) is not this page's.
  if (![...report.options].some((o) => o.value === st.report)) st.report = "";
  report.value = st.report;
  const apply = h("button", { type: "submit" }, "Apply");
  const reportTitle = h("input", { type: "text", placeholder: "Report title" });
  const saveReport = h("button", { type: "button", class: "secondary", disabled: !writable() }, "Save as report");
  const download = h("button", { type: "button", class: "secondary" }, "Download CSV");
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });

  const form = h("form", { class: "panel", "aria-label": "Cost query" },
    h("div", { class: "row" },
      field("c-preset", "Date range", preset, ["preset"]),
      field("c-start", "From", start, ["start_date"]),
      field("c-end", "To", end, ["end_date"]),
      field("c-bin", "Date bin", bin, ["date_bin"]),
      field("c-groupings", "Group by", groupings, ["groupings"]),
      field("c-then-by", "Then by", thenBy, []),
      field("c-workspace", "Workspace", workspace, ["workspace_token", "workspace"]),
      field("c-report", "Cost report", report, ["cost_report_token"])),
    field("c-filter", "Filter (VQL)", filter, ["filter"]),
    h("div", { class: "row" },
      h("label", { class: "nowrap" }, previous, " Show previous period"),
      apply, download,
      h("span", { class: "spacer" }),
      h("label", { for: "c-report-title", class: "nowrap" }, "Save as"), Object.assign(reportTitle, { id: "c-report-title" }), saveReport),
    h("p", { class: "form-err", role: "alert" }));

  const totalEl = h("span", { class: "big", id: "total-cost" }, "…");
  const rowsEl = h("span", { class: "big", id: "row-count" }, "…");
  const chart = h("div", { class: "chart", id: "costs-chart", "aria-live": "polite" });
  const table = h("div", { id: "costs-table" });
  main.replaceChildren(h("h1", {}, "Costs"), form,
    h("div", { class: "totals" }, h("div", {}, h("div", { class: "muted" }, "Total cost"), totalEl),
      h("div", {}, h("div", { class: "muted" }, "Rows"), rowsEl)),
    chart, status, h("h2", {}, "Cost rows"), table);
  document.title = "Costs · costd";

  let generation = 0;
  async function load(reason) {
    // The page's first chart counts from the navigation's start (what a person waits for after opening
    // the console); every later one from the change that asked for it.
    const t0 = reason === "first" && !firstCostsPaintDone ? 0 : performance.now();
    firstCostsPaintDone = true;
    const mine = ++generation;
    clearErrors(form);
    status.textContent = "Loading…";
    let result, prev = null;
    try {
      result = await fetchCosts(query());
      if (st.previous) {
        const p = previousPeriod(st.start, st.end);
        const q = query();
        q.set("start_date", p.start); q.set("end_date", p.end);
        q.set("groupings", "provider");
        prev = await fetchCosts(q);
      }
    } catch (x) {
      if (mine !== generation) return;
      status.textContent = "";
      if (x instanceof ApiError) showErrors(form, x.errors); else form.querySelector(".form-err").textContent = String(x);
      return;
    }
    if (mine !== generation) return;
    draw(result, prev);
    await new Promise((r) => requestAnimationFrame(() => r()));
    const ms = Math.round(performance.now() - t0);
    chart.dataset.paintMs = String(ms);
    chart.dataset.paintReason = reason;
    document.body.dataset.costsPainted = String((Number(document.body.dataset.costsPainted) || 0) + 1);
    status.textContent = `${result.rows.length} rows, drawn in ${ms} ms`;
  }

  function label(row) {
    return st.groupings.map((g) => row[g] ?? "(none)").join(" / ") || "Total";
  }

  function draw(result, prev) {
    totalEl.textContent = `${money(result.total.amount)} ${result.total.currency}`;
    totalEl.title = `${result.total.amount} ${result.total.currency}`;
    totalEl.dataset.amount = result.total.amount;
    rowsEl.textContent = String(result.rows.length);
    const bins = [...new Set([...allBins(st.start, st.end, st.bin), ...result.rows.map((r) => r.accrued_at)])].sort();
    // Series: the largest eleven by size, the rest as "Other".
    const sums = new Map();
    for (const r of result.rows) { const k = label(r); sums.set(k, addDecimals(sums.get(k) || "0", r.amount)); }
    const ranked = [...sums.keys()].sort((a, b) => Math.abs(Number(sums.get(b))) - Math.abs(Number(sums.get(a))));
    const keep = new Set(ranked.slice(0, ranked.length > 12 ? 11 : 12));
    const series = new Map();
    for (const r of result.rows) {
      const name = keep.has(label(r)) ? label(r) : "Other";
      if (!series.has(name)) series.set(name, { name, values: {} });
      const s = series.get(name);
      const before = s.values[r.accrued_at] ? s.values[r.accrued_at][1] : "0";
      const sum = addDecimals(before, r.amount);
      s.values[r.accrued_at] = [Number(sum), sum];
    }
    let line = null;
    if (prev) {
      // Each earlier cost lands on the bin its date falls in once moved forward by the period's length.
      const { shift } = previousPeriod(st.start, st.end);
      const byBin = new Map(bins.map((b) => [b, "0"]));
      for (const r of prev.rows) {
        const moved = binStart(shift(r.accrued_at), st.bin);
        const at = [...bins].reverse().find((b) => b <= moved) || bins[0];
        byBin.set(at, addDecimals(byBin.get(at), r.amount));
      }
      line = { name: "Previous period", values: bins.map((b) => Number(byBin.get(b))) };
    }
    stackedBars(chart, { bins, series: [...series.values()], line, currency: result.total.currency,
      title: `Costs by ${st.groupings.join(", ")} per ${st.bin}` });
    drawTable(result.rows);
  }

  function drawTable(rows) {
    const cols = ["accrued_at", ...st.groupings, "amount"];
    const { key, dir } = st.sort;
    const k = cols.includes(key) ? key : "accrued_at";
    const sorted = [...rows].sort((a, b) => {
      const x = a[k] ?? "", y = b[k] ?? "";
      const c = k === "amount" ? Number(x) - Number(y) : String(x).localeCompare(String(y));
      return dir === "asc" ? c : -c;
    });
    const shown = sorted.slice(0, 1000);
    const head = h("tr", {}, cols.map((c) => {
      const sortedBy = c === k;
      return h("th", { class: c === "amount" ? "num" : "", "aria-sort": sortedBy ? (dir === "asc" ? "ascending" : "descending") : "none" },
        h("button", { type: "button", class: "sort", onclick: () => { st.sort = { key: c, dir: sortedBy && dir === "desc" ? "asc" : "desc" }; drawTable(rows); } },
          c === "accrued_at" ? "date" : c, sortedBy ? (dir === "asc" ? " ▲" : " ▼") : ""));
    }));
    const body = shown.map((r) => h("tr", {}, cols.map((c) => c === "amount"
      ? h("td", { class: "num", title: `${r.amount} ${r.currency}` }, money(r.amount))
      : h("td", {}, r[c] ?? ""))));
    table.replaceChildren(h("table", {}, h("thead", {}, head), h("tbody", {}, body)),
      rows.length > shown.length ? h("p", { class: "muted" }, `The first ${shown.length} of ${rows.length} rows; download the CSV for all.`) : "");
  }

  const changed = () => {
    st.start = start.value; st.end = end.value; st.bin = bin.value;
    st.groupings = [groupings.value, thenBy.value].filter((g, i, all) => g && all.indexOf(g) === i);
    st.workspace = workspace.value; st.filter = filter.value; st.previous = previous.checked; st.report = report.value;
    load("change");
  };
  preset.addEventListener("change", () => {
    st.preset = preset.value;
    const r = presetRange(preset.value);
    if (r) { start.value = r[0]; end.value = r[1]; }
    changed();
  });
  for (const c of [start, end]) c.addEventListener("change", () => { preset.value = "custom"; st.preset = "custom"; changed(); });
  for (const c of [bin, groupings, thenBy, workspace, previous]) c.addEventListener("change", changed);
  report.addEventListener("change", async () => {
    if (report.value) {
      try {
        const r = await get(`/v2/cost_reports/${report.value}`);
        filter.value = r.filter || "";
        if (r.groupings) {
          const gs = r.groupings.split(",").filter((g) => choices.includes(g));
          if (gs[0]) groupings.value = gs[0];
          thenBy.value = gs[1] || "";
        }
        if (r.start_date && r.end_date) { start.value = r.start_date; end.value = r.end_date; preset.value = "custom"; }
        if (["day", "week", "month", "quarter"].includes(r.date_bin)) bin.value = r.date_bin;
        if (r.workspace_token) workspace.value = r.workspace_token;
      } catch (x) { form.querySelector(".form-err").textContent = errorText(x); }
    }
    changed();
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); changed(); });
  filter.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); changed(); } });
  saveReport.addEventListener("click", async () => {
    clearErrors(form);
    try {
      const body = { title: reportTitle.value, groupings: st.groupings.join(","), start_date: st.start, end_date: st.end,
        date_bin: st.bin, chart_type: "bar" };
      if (st.filter.trim()) body.filter = st.filter.trim();
      if (st.workspace) body.workspace_token = st.workspace;
      const { body: saved } = await api("POST", "/v2/cost_reports", body);
      report.append(h("option", { value: saved.token }, saved.title));
      report.value = saved.token; st.report = saved.token;
      status.textContent = `Saved report “${saved.title}”.`;
      reportTitle.value = "";
    } catch (x) {
      // A missing title lands on the form's own line, next to the button.
      if (x instanceof ApiError) showErrors(form, x.errors); else throw x;
    }
  });
  download.addEventListener("click", async () => {
    clearErrors(form);
    download.disabled = true;
    try {
      const q = query();
      const body = Object.fromEntries(q.entries());
      delete body.order;
      body.groupings = st.groupings;
      let { status: code, body: exp } = await api("POST", "/v2/costs/data_exports", body);
      status.textContent = "Exporting…";
      for (let i = 0; code === 202 && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 500));
        ({ status: code, body: exp } = await api("GET", `/v2/data_exports/${exp.token}`));
      }
      if (exp.status === "failed") throw new Error(exp.error || "the export failed");
      const url = exp.manifest.files[0];
      const a = h("a", { href: new URL(url, location.href).pathname, download: "costs.csv" });
      document.body.append(a); a.click(); a.remove();
      status.textContent = `Exported ${exp.row_count ?? ""} rows to costs.csv.`;
    } catch (x) {
      if (x instanceof ApiError) showErrors(form, x.errors); else form.querySelector(".form-err").textContent = String(x.message || x);
    } finally { download.disabled = false; }
  });
  await load("first");
};

// ---------------------------------------------------------------------------------------------- rules

const RULE_FIELDS = {
  exclusion: ["charge_type"],
  adjustment: ["percentage"],
  credit: ["service", "category", "sub_category", "amount"],
  charge: ["service", "category", "sub_category", "amount"],
  custom: ["sql_query"],
};

function ruleSummary(r) {
  switch (r.type.toLowerCase()) {
    case "exclusion": return `excludes charge type ${r.charge_type}`;
    case "adjustment": return `shows ${r.percentage}% of the cost`;
    case "credit": return `credit of ${r.amount} a month on ${r.service}`;
    case "charge": return `charge of ${r.amount} a month for ${r.service}`;
    default: return r.sql_query || "";
  }
}

pages.rules = async function rulesPage(main) {
  const rules = await getAll("/v2/billing_rules", "billing_rules");
  const list = h("table", { id: "rules-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Title"), h("th", {}, "Type"), h("th", {}, "What it does"), h("th", {}, "Dates"), h("th", {}, "Token"), h("th", {}, ""))),
    h("tbody", {}, rules.map((r) => h("tr", {},
      h("td", {}, r.title), h("td", {}, r.type), h("td", {}, h("code", {}, ruleSummary(r))),
      h("td", { class: "nowrap" }, [r.start_date, r.end_date].filter(Boolean).join(" → ") || "always"),
      h("td", { class: "token" }, r.token),
      h("td", { class: "nowrap" },
        writable() ? h("button", { type: "button", class: "link", "aria-label": `Edit ${r.title}`, onclick: () => edit(r) }, "Edit") : "",
        writable() ? h("button", { type: "button", class: "link", "aria-label": `Delete ${r.title}`, onclick: async () => {
          if (!confirm(`Delete the rule “${r.title}”?`)) return;
          try { await api("DELETE", `/v2/billing_rules/${r.token}`); pages.rules(main); } catch (x) { alert(errorText(x)); }
        } }, "Delete") : "")))));

  const type = h("select", {}, Object.keys(RULE_FIELDS).map((t) => h("option", { value: t }, t[0].toUpperCase() + t.slice(1))));
  const inputs = {
    title: h("input", { type: "text" }),
    charge_type: h("input", { type: "text", placeholder: "e.g. Tax" }),
    percentage: h("input", { type: "text", inputmode: "decimal", placeholder: "75 shows 75%" }),
    service: h("input", { type: "text" }),
    category: h("input", { type: "text" }),
    sub_category: h("input", { type: "text" }),
    amount: h("input", { type: "text", inputmode: "decimal" }),
    start_date: h("input", { type: "date" }),
    end_date: h("input", { type: "date" }),
    sql_query: h("textarea", { rows: 4, placeholder: "UPDATE costs SET amount = amount * 0.95 WHERE service = 'Amazon EC2'" }),
    apply_to_all: h("input", { type: "checkbox" }),
  };
  const labels = { title: "Title", charge_type: "Charge type", percentage: "Percentage", service: "Service", category: "Category",
    sub_category: "Sub-category", amount: "Amount (a month)", start_date: "Start date", end_date: "End date", sql_query: "SQL" };
  const fields = Object.fromEntries(Object.entries(labels).map(([k, l]) => [k, field(`r-${k}`, l, inputs[k], [k])]));
  const heading = h("h2", { id: "rule-form-title" }, "New billing rule");
  const save = h("button", { type: "submit" }, "Create rule");
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel");
  let editing = null;
  const form = h("form", { class: "panel", id: "rule-form", "aria-labelledby": "rule-form-title" }, heading,
    h("div", { class: "grid2" }, field("r-type", "Type", type, ["type"]), fields.title, fields.charge_type, fields.percentage,
      fields.service, fields.category, fields.sub_category, fields.amount, fields.start_date, fields.end_date),
    fields.sql_query,
    h("label", { class: "nowrap" }, inputs.apply_to_all, " Apply to every managed account"),
    h("p", { class: "form-err", role: "alert" }), h("div", { class: "row" }, save, cancel));
  const shape = () => {
    const t = type.value;
    for (const k of ["charge_type", "percentage", "service", "category", "sub_category", "amount", "sql_query"]) {
      fields[k].hidden = !RULE_FIELDS[t].includes(k);
    }
  };
  type.addEventListener("change", shape);
  shape();
  function edit(r) {
    editing = r;
    heading.textContent = `Edit “${r.title}”`;
    save.textContent = "Save rule";
    cancel.hidden = false;
    type.value = r.type.toLowerCase(); type.disabled = true;
    for (const [k, input] of Object.entries(inputs)) {
      if (k === "apply_to_all") input.checked = !!r.apply_to_all;
      else input.value = r[k] ?? "";
    }
    shape(); clearErrors(form);
    inputs.title.focus();
  }
  cancel.addEventListener("click", () => pages.rules(main));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { type: type.value, title: inputs.title.value, apply_to_all: inputs.apply_to_all.checked };
    for (const k of [...RULE_FIELDS[type.value], "start_date", "end_date"]) {
      const v = inputs[k].value.trim();
      if (v !== "") body[k] = v;
      else if (editing && editing[k] != null) body[k] = null;
    }
    if (editing) delete body.type;
    save.disabled = true;
    try {
      if (editing) await api("PUT", `/v2/billing_rules/${editing.token}`, body);
      else await api("POST", "/v2/billing_rules", body);
      await pages.rules(main);
      main.querySelector("#rules-status").textContent = editing ? `Saved “${body.title}”.` : `Created “${body.title}”.`;
    } catch (x) {
      if (x instanceof ApiError) showErrors(form, x.errors); else form.querySelector(".form-err").textContent = String(x);
    } finally { save.disabled = false; }
  });
  main.replaceChildren(h("h1", {}, "Billing rules"), h("p", { id: "rules-status", class: "ok", role: "status" }),
    rules.length ? list : h("p", { class: "muted" }, "No billing rules yet."), writable() ? form : "");
  document.title = "Billing rules · costd";
};

// ----------------------------------------------------------------------------------- managed accounts

pages.accounts = async function accountsPage(main) {
  if (session.info.view_account_token) {
    main.replaceChildren(h("h1", {}, "Managed accounts"), h("p", { class: "muted" }, "Switch back to your own account to manage accounts."));
    return;
  }
  const [accounts, integrations, rules, profiles] = await Promise.all([
    getAll("/v2/managed_accounts", "managed_accounts"),
    getAll("/v2/integrations", "integrations"),
    getAll("/v2/billing_rules", "billing_rules"),
    getAll("/v2/billing_profiles", "billing_profiles").catch(() => []),
  ]);
  const ruleName = (t) => { const r = rules.find((x) => x.token === t); return r ? `${r.title} (${r.type})` : t; };
  const name = h("input", { type: "text" });
  const email = h("input", { type: "email" });
  const create = h("form", { class: "panel", "aria-labelledby": "new-account" }, h("h2", { id: "new-account" }, "New managed account"),
    h("div", { class: "row" }, field("a-name", "Name", name, ["name"]), field("a-email", "Contact email", email, ["contact_email"]),
      h("div", { class: "field" }, h("button", { type: "submit" }, "Create account"))),
    h("p", { class: "form-err", role: "alert" }));
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("POST", "/v2/managed_accounts", { name: name.value, contact_email: email.value });
      await session.refreshHeader?.();
      await pages.accounts(main);
    }
    catch (x) { if (x instanceof ApiError) showErrors(create, x.errors); else throw x; }
  });

  const cards = accounts.map((a) => {
    const order = [...a.billing_rule_tokens];
    const ol = h("ol", { class: "rules" });
    const drawOrder = () => ol.replaceChildren(...order.map((t, i) => h("li", {}, ruleName(t), " ",
      h("button", { type: "button", class: "link", "aria-label": `Move ${ruleName(t)} up`, disabled: i === 0, onclick: () => { [order[i - 1], order[i]] = [order[i], order[i - 1]]; drawOrder(); } }, "↑"),
      h("button", { type: "button", class: "link", "aria-label": `Move ${ruleName(t)} down`, disabled: i === order.length - 1, onclick: () => { [order[i + 1], order[i]] = [order[i], order[i + 1]]; drawOrder(); } }, "↓"),
      h("button", { type: "button", class: "link", "aria-label": `Remove ${ruleName(t)}`, onclick: () => { order.splice(i, 1); drawOrder(); } }, "remove"))));
    drawOrder();
    const add = h("select", { "aria-label": `Add a rule to ${a.name}` }, h("option", { value: "" }, "Add a rule…"),
      rules.map((r) => h("option", { value: r.token }, `${r.title} (${r.type})`)));
    add.addEventListener("change", () => { if (add.value && !order.includes(add.value)) { order.push(add.value); drawOrder(); } add.value = ""; });
    const boxes = integrations.map((i) => h("label", { class: "nowrap" },
      h("input", { type: "checkbox", value: i.token, checked: a.access_credential_tokens.includes(i.token) }), " ", i.account_identifier || i.token, " ", h("span", { class: "token muted" }, i.token)));
    const profile = h("select", { id: `profile-${a.token}` }, h("option", { value: "" }, "(none: not invoiced)"),
      profiles.map((p) => h("option", { value: p.token }, p.nickname)));
    profile.value = a.msp_billing_profile_token || "";
    const form = h("form", { class: "panel", "data-account": a.token, "aria-label": `Managed account ${a.name}` },
      h("h2", {}, a.name, " ", h("span", { class: "token muted" }, a.token)),
      h("p", { class: "muted" }, a.contact_email),
      h("div", { class: "field", "data-fields": "access_credential_tokens" }, h("label", {}, "Integrations it sees"), h("div", { class: "row" }, boxes.length ? boxes : "No integrations yet."), h("p", { class: "err", role: "alert" })),
      h("div", { class: "field", "data-fields": "billing_rule_tokens" }, h("label", {}, "Billing rules, in order"), ol, add, h("p", { class: "err", role: "alert" })),
      h("div", { class: "field", "data-fields": "msp_billing_profile_token" }, h("label", { for: `profile-${a.token}` }, "Billing profile (for invoices)"), profile, h("p", { class: "err", role: "alert" })),
      h("p", { class: "form-err", role: "alert" }),
      h("div", { class: "row" }, h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: async () => {
          const { console_ } = await import("./api.js");
          await console_.view(a.token);
          location.hash = "#/costs";
          location.reload();
        } }, "View its costs"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Delete the managed account ${a.name}?`)) return;
          try { await api("DELETE", `/v2/managed_accounts/${a.token}`); await session.refreshHeader?.(); await pages.accounts(main); } catch (x) { showErrors(form, x.errors || [String(x)]); }
        } }, "Delete")),
      h("p", { class: "ok", role: "status" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      const access = boxes.map((b) => b.querySelector("input")).filter((c) => c.checked).map((c) => c.value);
      try {
        await api("PUT", `/v2/managed_accounts/${a.token}`, { access_credential_tokens: access, billing_rule_tokens: order, msp_billing_profile_token: profile.value });
        form.querySelector(".ok").textContent = "Saved.";
      } catch (x) { if (x instanceof ApiError) showErrors(form, x.errors); else throw x; }
    });
    return form;
  });
  main.replaceChildren(h("h1", {}, "Managed accounts"),
    h("p", { class: "muted" }, "Rules run by group: cost inserts, then transforms (exclusions, adjustments, custom UPDATEs), then monthly inserts (credits, charges); the order within a group is yours."),
    ...cards, accounts.length ? "" : h("p", { class: "muted" }, "No managed accounts yet."), create);
  document.title = "Managed accounts · costd";
};

// -------------------------------------------------------------------------------------- integrations

pages.integrations = async function integrationsPage(main) {
  const integrations = await getAll("/v2/integrations", "integrations");
  const name = h("input", { type: "text" });
  const create = h("form", { class: "panel", "aria-labelledby": "new-integration" }, h("h2", { id: "new-integration" }, "New custom provider"),
    h("div", { class: "row" }, field("i-name", "Name", name, ["name"]), h("div", { class: "field" }, h("button", { type: "submit" }, "Create"))),
    h("p", { class: "form-err", role: "alert" }));
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await api("POST", "/v2/integrations/custom_provider", { name: name.value }); await pages.integrations(main); }
    catch (x) { if (x instanceof ApiError) showErrors(create, x.errors); else throw x; }
  });
  // Bucket integrations: where the cloud writes its export, and keys to read it (sealed by the server, never shown again).
  const connectForm = (provider, title, inputs, body) => {
    const form = h("form", { class: "panel", "aria-labelledby": `new-${provider}` }, h("h2", { id: `new-${provider}` }, title),
      h("div", { class: "row" }, ...inputs.map(([id, label, input, fields]) => field(id, label, input, fields))),
      h("div", { class: "row" }, h("div", { class: "field" }, h("button", { type: "submit" }, "Connect"))),
      h("p", { class: "form-err", role: "alert" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const payload = Object.fromEntries(Object.entries(body()).filter(([, v]) => v !== ""));
      try { await api("POST", `/v2/integrations/${provider}`, payload); await pages.integrations(main); }
      catch (x) { if (x instanceof ApiError) showErrors(form, x.errors); else throw x; }
    });
    return form;
  };
  const text = () => h("input", { type: "text" });
  const secret = () => h("input", { type: "password", autocomplete: "off" });
  const aws = { bucket: text(), prefix: text(), export_name: text(), region: text(), endpoint: text(), access_key_id: text(), secret_access_key: secret() };
  const awsForm = connectForm("aws", "Connect an AWS Data Export (S3)", [
    ["aws-bucket", "Bucket", aws.bucket, ["bucket"]], ["aws-prefix", "Prefix", aws.prefix, ["prefix"]],
    ["aws-export", "Export name", aws.export_name, ["export_name"]], ["aws-region", "Region", aws.region, ["region"]],
    ["aws-key-id", "Access key id", aws.access_key_id, ["access_key_id"]], ["aws-key", "Secret access key", aws.secret_access_key, ["secret_access_key"]],
    ["aws-endpoint", "Endpoint (S3-compatible stores only)", aws.endpoint, ["endpoint"]],
  ], () => Object.fromEntries(Object.entries(aws).map(([k, v]) => [k, v.value.trim()])));
  const az = { storage_account: text(), container: text(), root_folder_path: text(), endpoint: text(), account_key: secret(), sas_token: secret(), tenant: text(), app_id: text(), password: secret() };
  const azureForm = connectForm("azure", "Connect an Azure Cost Management export (Blob)", [
    ["az-account", "Storage account", az.storage_account, ["storage_account"]], ["az-container", "Container", az.container, ["container"]],
    ["az-root", "Root folder path", az.root_folder_path, ["root_folder_path"]],
    ["az-key", "Account key", az.account_key, ["account_key"]], ["az-sas", "or SAS token", az.sas_token, ["sas_token"]],
    ["az-tenant", "or tenant", az.tenant, ["tenant"]], ["az-app", "app id", az.app_id, ["app_id"]], ["az-password", "password", az.password, ["password"]],
    ["az-endpoint", "Endpoint (emulators only)", az.endpoint, ["endpoint"]],
  ], () => Object.fromEntries(Object.entries(az).map(([k, v]) => [k, v.value.trim()])));

  const sections = await Promise.all(integrations.map(async (i) => {
    const bucket = i.provider === "aws" || i.provider === "azure";
    const uploads = i.provider === "custom_provider" || bucket
      ? await getAll(`/v2/integrations/${i.token}/costs`, "user_costs_uploads").catch(() => []) : [];
    const syncStatus = h("div", { role: "status", "aria-live": "polite", class: "sync-result" });
    const syncNow = h("button", { type: "button", onclick: async () => {
      syncNow.disabled = true;
      syncStatus.replaceChildren(h("p", { class: "muted" }, "Syncing: reading the export's manifests…"));
      try {
        const done = (await api("POST", `/v2/integrations/${i.token}/sync?wait=true`)).body;
        costsCache.clear();
        await pages.integrations(main);
        const again = main.querySelector(`[data-integration="${i.token}"] .sync-result`);
        if (again) again.replaceChildren(h("p", { class: done.status === "error" ? "form-err" : "ok" }, done.status === "error" ? "The sync found problems (below)." : "Synced."));
      } catch (x) { syncNow.disabled = false; syncStatus.replaceChildren(h("p", { class: "form-err" }, errorText(x))); }
    } }, "Sync now");
    const syncInfo = bucket ? h("div", {},
      h("p", { class: "muted" }, i.last_synced_at ? `Last synced ${i.last_synced_at}` : "Not synced yet"),
      i.last_error ? h("pre", { class: "form-err sync-error", role: "alert" }, i.last_error) : "",
      writable() ? syncNow : "", syncStatus) : "";
    const table = h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", { class: "num" }, "Amount"), h("th", {}, "Dates"), h("th", {}, "Uploaded"), h("th", {}, ""))),
      h("tbody", {}, uploads.map((u) => h("tr", {}, h("td", {}, u.filename), h("td", { class: "num", title: u.amount }, money(u.amount)),
        h("td", { class: "nowrap" }, `${u.start_date} → ${u.end_date}`), h("td", {}, u.created_at),
        h("td", {}, writable() ? h("button", { type: "button", class: "link", "aria-label": `Delete upload ${u.filename}`, onclick: async () => {
          if (!confirm(`Delete the upload ${u.filename}? Its costs vanish at once.`)) return;
          try { await api("DELETE", `/v2/integrations/${i.token}/costs/${u.token}`); costsCache.clear(); await pages.integrations(main); } catch (x) { alert(errorText(x)); }
        } }, "Delete") : "")))));
    const input = h("input", { type: "file", accept: ".csv,.gz,text/csv,application/gzip", id: `file-${i.token}` });
    const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
    const result = h("div", { role: "status", "aria-live": "polite", class: "upload-result" });
    const drop = h("div", { class: "drop" }, h("p", {}, "Drop a FOCUS CSV (or .csv.gz) here, or "),
      h("label", { for: `file-${i.token}`, class: "nowrap" }, "choose a file"), input, bar, result);
    const send = async (file) => {
      bar.hidden = false; bar.value = 0;
      result.replaceChildren(h("p", { class: "muted" }, `Uploading ${file.name}…`));
      try {
        const u = await upload(`/v2/integrations/${i.token}/costs.csv`, file, (p) => {
          bar.value = p;
          // Sent: the server now checks every row and writes the file before it answers.
          if (p >= 1) result.replaceChildren(h("p", { class: "muted" }, `Sent ${file.name}; checking and storing its rows…`));
        });
        costsCache.clear();
        bar.value = 1;
        result.replaceChildren(h("p", { class: "ok" }, `Uploaded ${u.filename}: ${u.amount} from ${u.start_date} to ${u.end_date}.`));
        setTimeout(() => pages.integrations(main).then(() => {
          const again = main.querySelector(`[data-integration="${i.token}"] .upload-result`);
          if (again) again.replaceChildren(h("p", { class: "ok" }, `Uploaded ${u.filename}: ${u.amount} from ${u.start_date} to ${u.end_date}.`));
        }), 0);
      } catch (x) {
        bar.hidden = true;
        const errors = x instanceof ApiError ? x.errors : [String(x)];
        result.replaceChildren(h("p", { class: "form-err" }, `${file.name} was not uploaded (nothing was stored):`),
          h("ul", { class: "upload-errors" }, errors.slice(0, 100).map((m) => h("li", {}, m))),
          errors.length > 100 ? h("p", { class: "muted" }, `…and ${errors.length - 100} more.`) : "");
      } finally { input.value = ""; }
    };
    input.addEventListener("change", () => { if (input.files[0]) send(input.files[0]); });
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]); });
    return h("section", { class: "panel", "data-integration": i.token, "aria-label": `Integration ${i.account_identifier || i.token}` },
      h("h2", {}, i.account_identifier || i.provider, " ", h("span", { class: "token muted" }, i.token)),
      h("p", { class: "muted" }, `${i.provider} · `, h("span", { class: "integration-status" }, i.status)),
      syncInfo,
      uploads.length ? table : h("p", { class: "muted" }, bucket ? "No billing periods loaded yet." : "No uploads yet."),
      i.provider === "custom_provider" && writable() ? drop : "");
  }));
  main.replaceChildren(h("h1", {}, "Integrations"), ...sections,
    integrations.length ? "" : h("p", { class: "muted" }, "No integrations yet."),
    ...(writable() ? [create, awsForm, azureForm] : []));
  // A sync running in the server (a new integration's first one, the hourly one): look again until it is done.
  const syncing = integrations.some((i) => i.status === "pending" || i.status === "importing");
  if (syncing) {
    const shown = location.hash;
    setTimeout(() => {
      if (location.hash === shown && main.isConnected && !main.querySelector("form :focus")) pages.integrations(main).catch(() => {});
    }, 1500);
  }
  document.title = "Integrations · costd";
};

// ------------------------------------------------------------------------------------------ invoices

pages.invoices = async function invoicesPage(main) {
  if (session.info.view_account_token) {
    main.replaceChildren(h("h1", {}, "Invoices"), h("p", { class: "muted" }, "Switch back to your own account to see its invoices."));
    return;
  }
  const [invoices, accounts] = await Promise.all([getAll("/v2/invoices", "invoices"), getAll("/v2/managed_accounts", "managed_accounts")]);
  const status = h("p", { id: "invoices-status", role: "status", "aria-live": "polite" });
  const table = h("table", { id: "invoices-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Number"), h("th", {}, "Account"), h("th", {}, "Period"), h("th", { class: "num" }, "Total"), h("th", {}, "Status"), h("th", {}, ""))),
    h("tbody", {}, invoices.map((v) => h("tr", {}, h("td", {}, v.invoice_number), h("td", {}, v.account_name),
      h("td", { class: "nowrap" }, `${v.billing_period_start} → ${v.billing_period_end}`),
      h("td", { class: "num" }, `${v.total} ${v.currency}`), h("td", {}, v.status),
      h("td", { class: "nowrap" }, ["pdf", "csv"].map((kind) => h("button", { type: "button", class: "link", onclick: async () => {
        try {
          const { body } = await api("POST", `/v2/invoices/${v.token}/download`, { file_type: kind });
          location.assign(body.download_url);
        } catch (x) { say(errorText(x), true); }
      } }, kind.toUpperCase())),
      // A draft can be computed again from the costs as they are now, or emailed (which freezes it).
      writable() && v.status === "draft" ? [
        action(v, "regenerate", "Regenerate", (b) => `${b.invoice_number} recomputed: ${b.total} ${b.currency}.`),
        action(v, "send", "Send", (b) => `${b.invoice.invoice_number} sent to ${b.recipients.join(", ")}.`),
      ] : "")))));
  function say(text, bad) {
    status.className = bad ? "form-err" : "ok";
    status.textContent = text;
  }
  function action(v, path, label, done) {
    return h("button", { type: "button", class: "link", "aria-label": `${label} ${v.invoice_number}`, onclick: async () => {
      try {
        const { body } = await api("POST", `/v2/invoices/${v.token}/${path}`);
        await pages.invoices(main);
        main.querySelector("#invoices-status").className = "ok";
        main.querySelector("#invoices-status").textContent = done(body);
      } catch (x) { say(errorText(x), true); }
    } }, label);
  }
  const account = h("select", {}, accounts.map((a) => h("option", { value: a.token }, a.name)));
  const [ps, pe] = presetRange("last_month");
  const start = h("input", { type: "date", value: ps });
  const end = h("input", { type: "date", value: pe });
  const form = h("form", { class: "panel", "aria-labelledby": "new-invoice" }, h("h2", { id: "new-invoice" }, "New invoice"),
    h("div", { class: "row" }, field("v-account", "Managed account", account, ["account_token"]),
      field("v-start", "Period start", start, ["billing_period_start"]), field("v-end", "Period end", end, ["billing_period_end"]),
      h("div", { class: "field" }, h("button", { type: "submit" }, "Create draft"))),
    h("p", { class: "form-err", role: "alert" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await api("POST", "/v2/invoices", { account_token: account.value, billing_period_start: start.value, billing_period_end: end.value });
      await pages.invoices(main);
    } catch (x) { if (x instanceof ApiError) showErrors(form, x.errors); else throw x; }
  });
  main.replaceChildren(h("h1", {}, "Invoices"), status, invoices.length ? table : h("p", { class: "muted" }, "No invoices yet."),
    writable() && accounts.length ? form : "");
  document.title = "Invoices · costd";
};

// ------------------------------------------------------------------------------------------- budgets

/** Actual against budget as a bar: the budget is the track, the actual fills it (red past 100%), and a
 * forecast, when there is one, shows as a lighter fill up to where the period is heading. */
function budgetBar(actual, amount, projected) {
  const b = Number(amount);
  const share = (x) => b > 0 ? (Number(x) / b) * 100 : (Number(x) > 0 ? 100 : 0);
  const pct = share(actual), ahead = projected == null ? null : share(projected);
  const label = `${actual} of ${amount} (${pct.toFixed(1)}%)` + (ahead == null ? "" : `, heading for ${projected} (${ahead.toFixed(1)}%)`);
  // Widths through the CSSOM: the console's CSP (style-src 'self') refuses style attributes.
  const fill = (tag, share) => {
    const el = h(tag, { class: share >= 100 ? "over" : "" });
    el.style.width = `${Math.min(share, 100).toFixed(1)}%`;
    return el;
  };
  const bar = h("div", { class: "bar", role: "img", "aria-label": label }, ahead == null ? "" : fill("b", ahead), fill("i", pct));
  return h("div", { class: "nowrap" }, bar, h("span", { class: "muted" }, ` ${pct.toFixed(1)}%`));
}

/** Where an anomaly's cost sits against its expected band, in percent of a scale that holds both with a
 * tenth to spare: `{ expected, upper, cost }` (the band runs from `expected` to `upper`). For drawing only;
 * the amounts are shown as the API wrote them. */
export function bandShares(amount, expected, upper) {
  const [a, e] = [Number(amount), Number(expected)];
  const u = upper == null ? e : Number(upper);
  const top = Math.max(a, u, e, 0) * 1.1 || 1;
  const share = (x) => Math.max(0, Math.min(100, (x / top) * 100));
  return { expected: share(e), upper: share(u), cost: share(a) };
}

/** An anomaly's day as a chart: the expected band shaded, the expected cost a tick, the day's cost a dot. */
function bandChart(a) {
  const s = bandShares(a.amount, a.previous_amount, a.expected_upper);
  const at = (tag, cls, left, width) => {
    const el = h(tag, { class: cls });
    el.style.left = `${left.toFixed(1)}%`;
    if (width != null) el.style.width = `${Math.max(width, 0.5).toFixed(1)}%`;
    return el;
  };
  const label = `cost ${a.amount} against an expected ${a.previous_amount}` + (a.expected_upper ? ` (usual up to ${a.expected_upper})` : "");
  return h("div", { class: "band", role: "img", "aria-label": label },
    at("span", "range", s.expected, s.upper - s.expected), at("span", "mid", s.expected), at("span", "cost", s.cost));
}

/** Every day `from..=to` with the exact sum of `rows`' amounts on it (API rows: `accrued_at`, `amount`),
 * "0" where none: an anomaly's history, ready to draw. */
export function dailySeries(rows, from, to) {
  const byDay = new Map();
  for (const r of rows) {
    const d = r.accrued_at.slice(0, 10);
    byDay.set(d, addDecimals(byDay.get(d) || "0", r.amount));
  }
  const out = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push({ date: d, text: byDay.get(d) || "0", value: Number(byDay.get(d) || 0) });
  return out;
}

/** What the detector saw: the anomaly's service's usage costs in its report over the eight weeks to its day. */
async function anomalyHistory(a, container) {
  const from = addDays(a.day, -55);
  const quote = (v) => `'${String(v).replace(/'/g, "''")}'`;
  const filter = `costs.provider = ${quote(a.provider)} AND costs.service = ${quote(a.service)} AND costs.charge_type = 'Usage'`;
  const q = new URLSearchParams({ cost_report_token: a.cost_report_token, start_date: from, end_date: a.day, date_bin: "day",
    groupings: "provider", filter, limit: "1000" });
  const rows = await getAll(`/v2/costs?${q}`, "costs");
  historyChart(container, { days: dailySeries(rows, from, a.day), expected: Number(a.previous_amount),
    upper: Number(a.expected_upper ?? a.previous_amount), day: a.day, currency: "",
    title: `${a.service}: eight weeks of daily usage to ${a.day}, its usual band shaded` });
}

/** Each budget period's forecast: its actual plus the report's forecast days after today inside it, in exact
 * decimals; `null` for a period that ends by today (its actual is what it is) or when there is no forecast.
 * `days` are the report's forecast (`provider` and `service` `all`), which starts today; today's costs so
 * far are in the actual already, so the forecast counts from tomorrow. */
export function projectPeriods(performance, periods, days) {
  if (!days || !days.length) return performance.map(() => null);
  const today = days.map((d) => d.date.slice(0, 10)).sort()[0];
  return performance.map((p, i) => {
    const start = p.date.slice(0, 10), end = periods[i] ? periods[i].end_at.slice(0, 10) : start;
    if (end <= today) return null;
    return days.map((d) => ({ date: d.date.slice(0, 10), amount: d.amount }))
      .filter((d) => d.date > today && d.date >= start && d.date <= end)
      .reduce((sum, d) => addDecimals(sum, d.amount), p.actual);
  });
}

/** A budget's report's forecast up to its last period's end; none once that end has passed (the API then
 * answers 400: an end before today) or for a budget of budgets. */
async function budgetForecast(b) {
  if (!b.cost_report_token || !b.periods.length) return [];
  const last = b.periods.map((p) => p.end_at.slice(0, 10)).sort().at(-1);
  try {
    const body = await get(`/v2/cost_reports/${b.cost_report_token}/forecasted_costs?provider=all&service=all&end_date=${last}&limit=1000`);
    return body.forecasted_costs;
  } catch { return []; }
}

pages.budgets = async function budgetsPage(main) {
  const [budgets, alerts, reports, deliveries, costAlerts, summaries, anomalies] = await Promise.all([
    getAll("/v2/budgets", "budgets"), getAll("/v2/budget_alerts", "budget_alerts"),
    getAll("/v2/cost_reports", "cost_reports"), get("/v2/alert_deliveries?limit=50").then((b) => b.alert_deliveries),
    getAll("/v2/cost_alerts", "cost_alerts"), getAll("/v2/report_notifications", "report_notifications"),
    // Newest first, the latest 50 (the list is oldest first).
    getAll("/v2/anomaly_alerts", "anomaly_alerts").then((list) => list.reverse().slice(0, 50)),
  ]);
  // Each cost alert's events, newest first (what fired, with its numbers).
  const events = await Promise.all(costAlerts.map((a) => getAll(`/v2/cost_alerts/${a.token}/events`, "cost_alert_events")
    .then((list) => list.reverse()).catch(() => [])));
  // Each budget's performance (actual per period), asked for one by one.
  const shown = await Promise.all(budgets.map((b) => get(`/v2/budgets/${b.token}?include_performance=true`)));
  const projected = await Promise.all(shown.map(async (b) => projectPeriods(b.performance || [], b.periods, await budgetForecast(b))));
  const reportTitle = (t) => (reports.find((r) => r.token === t) || {}).title || t;
  const sections = shown.map((b, n) => h("section", { class: "panel", "aria-labelledby": `budget-${b.token}` },
    h("h2", { id: `budget-${b.token}` }, b.name),
    h("p", { class: "muted" }, b.cost_report_token ? `Follows the report ${reportTitle(b.cost_report_token)}.` : `Sums ${b.child_budget_tokens.length} budgets.`),
    h("table", { class: "budget-periods" },
      h("thead", {}, h("tr", {}, h("th", {}, "Period"), h("th", { class: "num" }, "Actual"), h("th", { class: "num" }, "Forecast"), h("th", { class: "num" }, "Budget"), h("th", {}, "Used"))),
      h("tbody", {}, (b.performance || []).map((p, i) => h("tr", {},
        h("td", { class: "nowrap" }, `${p.date.slice(0, 10)} → ${b.periods[i] ? b.periods[i].end_at.slice(0, 10) : ""}`),
        h("td", { class: "num" }, p.actual), h("td", { class: "num" }, projected[n][i] ?? "—"), h("td", { class: "num" }, p.amount),
        h("td", {}, budgetBar(p.actual, p.amount, projected[n][i])))))),
    h("p", {}, alerts.filter((a) => a.budget_tokens.includes(b.token)).map((a) =>
      h("span", { class: "chip" }, `Alert at ${a.threshold}%${a.based_on === "forecast" ? " of the forecast" : ""} → ${[...a.recipient_channels, ...a.user_tokens].join(", ") || "no one"}`))),
    writable() ? h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Delete the budget ${b.name}?`)) return;
      try {
        for (const a of alerts.filter((a) => a.budget_tokens.length === 1 && a.budget_tokens[0] === b.token)) await api("DELETE", `/v2/budget_alerts/${a.token}`);
        await api("DELETE", `/v2/budgets/${b.token}`);
        await pages.budgets(main);
      } catch (x) { alert(errorText(x)); }
    } }, "Delete") : ""));

  // A new budget: one report, monthly periods of one amount.
  const name = h("input", { type: "text" });
  const report = h("select", {}, reports.map((r) => h("option", { value: r.token }, r.title)));
  const first = h("input", { type: "month", value: new Date().toISOString().slice(0, 7) });
  const months = h("input", { type: "number", min: "1", max: "120", value: "12" });
  const amount = h("input", { type: "text", inputmode: "decimal", placeholder: "1000.00" });
  const threshold = h("input", { type: "number", min: "1", max: "1000", value: "80" });
  const basedOn = h("select", {}, h("option", { value: "actual" }, "the actual so far"), h("option", { value: "forecast" }, "the forecast (actual + the report's forecast)"));
  const recipients = h("input", { type: "text", placeholder: "finops@example.com, https://hooks.slack.com/…" });
  const form = h("form", { class: "panel", "aria-labelledby": "new-budget" }, h("h2", { id: "new-budget" }, "New budget"),
    h("div", { class: "grid2" }, field("b-name", "Name", name, ["name"]), field("b-report", "Cost report", report, ["cost_report_token"]),
      field("b-first", "First month", first, ["periods"]), field("b-months", "Months", months, []),
      field("b-amount", "Amount per month", amount, ["amount"]), field("b-threshold", "Alert at (% of the month's budget)", threshold, ["threshold"]),
      field("b-based-on", "Alert on", basedOn, ["based_on"]),
      field("b-recipients", "Alert recipients (emails, webhook URLs)", recipients, ["recipient_channels"])),
    h("button", { type: "submit" }, "Create budget"), h("p", { class: "form-err", role: "alert" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const periods = [];
    for (let i = 0; i < Number(months.value || 0); i++) periods.push({ start_at: addMonths(`${first.value}-01`, i), amount: amount.value.trim() });
    try {
      const { body } = await api("POST", "/v2/budgets", { name: name.value, cost_report_token: report.value, periods });
      const channels = recipients.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (channels.length) {
        try {
          await api("POST", "/v2/budget_alerts", { budget_tokens: [body.token], threshold: Number(threshold.value), duration_in_days: "", recipient_channels: channels, based_on: basedOn.value });
        } catch (x) { await api("DELETE", `/v2/budgets/${body.token}`); throw x; }
      }
      await pages.budgets(main);
    } catch (x) { if (x instanceof ApiError) showErrors(form, x.errors.map((m) => m.replace(/^periods\[\d+\]\.amount/, "amount"))); else throw x; }
  });

  const deliveryTable = h("table", { id: "deliveries-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Message"), h("th", {}, "To"), h("th", {}, "Status"), h("th", { class: "num" }, "Attempts"), h("th", {}, "Last error"))),
    h("tbody", {}, deliveries.map((d) => h("tr", {}, h("td", {}, d.subject), h("td", {}, d.recipient),
      h("td", {}, d.status), h("td", { class: "num" }, d.attempts), h("td", {}, d.last_error || "")))));
  // Cost alerts: a report's last complete interval against the one before, and what fired last.
  const rise = (a) => a.unit_type === "percentage"
    ? `up ${a.threshold}%${a.minimum_threshold != null ? ` and at least ${a.minimum_threshold}` : ""}` : `up ${a.threshold}`;
  const costAlertTable = h("table", { id: "cost-alerts-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Cost alert"), h("th", {}, "Report"), h("th", {}, "Fires when"), h("th", {}, "To"), h("th", {}, "Last fired"))),
    h("tbody", {}, costAlerts.map((a, i) => h("tr", {}, h("td", {}, a.title), h("td", {}, a.report_tokens.map(reportTitle).join(", ")),
      h("td", {}, `the ${a.interval} is ${rise(a)} on the one before`),
      h("td", {}, [...a.email_recipients, ...a.slack_channels, ...a.teams_channels].join(", ") || "no one"),
      h("td", {}, events[i].length ? h("details", {}, h("summary", {}, `${events[i][0].triggered_at.slice(0, 10)}: ${events[i][0].description}`),
        h("ol", { class: "events" }, events[i].map((e) => h("li", {}, `${e.triggered_at.slice(0, 10)}: ${e.description}`)))) : "never")))));
  // Anomalies: a day's usage of a service far outside its usual band; archived once looked at.
  const anomalyTable = h("table", { id: "anomalies-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Day"), h("th", {}, "Service"), h("th", { class: "num" }, "Cost"), h("th", { class: "num" }, "Expected"), h("th", {}, "Against the usual band"), h("th", {}, "Report"), h("th", {}, "Status"))),
    h("tbody", {}, anomalies.map((a) => h("tr", {}, h("td", { class: "nowrap" }, a.day), h("td", {}, `${a.provider} · ${a.service}`),
      h("td", { class: "num" }, a.amount), h("td", { class: "num" }, a.previous_amount),
      h("td", {}, bandChart(a), " ", h("button", { type: "button", class: "link", onclick: async (e) => {
        const row = e.target.closest("tr");
        if (row.nextElementSibling && row.nextElementSibling.classList.contains("history-row")) { row.nextElementSibling.remove(); return; }
        const cell = h("td", { colspan: "7" }, "Loading…");
        row.after(h("tr", { class: "history-row" }, cell));
        try { await anomalyHistory(a, cell); } catch (x) { cell.textContent = errorText(x); }
      } }, "History")), h("td", {}, reportTitle(a.cost_report_token)),
      h("td", {}, a.status, writable() && a.status === "active" ? h("button", { type: "button", onclick: async () => {
        try { await api("PUT", `/v2/anomaly_alerts/${a.token}`, { status: "archived" }); await pages.budgets(main); } catch (x) { alert(errorText(x)); }
      } }, "Archive") : "")))));
  // Report notifications: a report's day, week or month summarised against the one before, on a schedule.
  const summaryTable = h("table", { id: "report-notifications-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Summary"), h("th", {}, "Report"), h("th", {}, "Every"), h("th", {}, "Change in"), h("th", {}, "To"), h("th", {}))),
    h("tbody", {}, summaries.map((n) => h("tr", {}, h("td", {}, n.title), h("td", {}, reportTitle(n.cost_report_token)),
      h("td", {}, { daily: "day", weekly: "week", monthly: "month" }[n.frequency] || n.frequency), h("td", {}, n.change),
      h("td", {}, [...n.recipient_channels, ...n.user_tokens].join(", ") || "no one"),
      h("td", {}, writable() ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete the summary ${n.title}?`)) return;
        try { await api("DELETE", `/v2/report_notifications/${n.token}`); await pages.budgets(main); } catch (x) { alert(errorText(x)); }
      } }, "Delete") : "")))));
  const sTitle = h("input", { type: "text" });
  const sReport = h("select", {}, reports.map((r) => h("option", { value: r.token }, r.title)));
  const sFrequency = h("select", {}, [["daily", "Daily"], ["weekly", "Weekly"], ["monthly", "Monthly"]].map(([v, l]) => h("option", { value: v }, l)));
  const sChange = h("select", {}, h("option", { value: "percentage" }, "percent"), h("option", { value: "dollars" }, "the report's currency"));
  const sTo = h("input", { type: "text", placeholder: "finops@example.com, https://hooks.slack.com/…" });
  const summaryForm = h("form", { class: "panel", "aria-labelledby": "new-summary" }, h("h2", { id: "new-summary" }, "New report summary"),
    h("div", { class: "grid2" }, field("s-title", "Title", sTitle, ["title"]), field("s-report", "Cost report", sReport, ["cost_report_token"]),
      field("s-frequency", "Every", sFrequency, ["frequency"]), field("s-change", "Change in", sChange, ["change"]),
      field("s-to", "Recipients (emails, webhook URLs)", sTo, ["recipient_channels"])),
    h("button", { type: "submit" }, "Create summary"), h("p", { class: "form-err", role: "alert" }));
  summaryForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(summaryForm);
    try {
      await api("POST", "/v2/report_notifications", { title: sTitle.value, cost_report_token: sReport.value, frequency: sFrequency.value,
        change: sChange.value, recipient_channels: sTo.value.split(",").map((x) => x.trim()).filter(Boolean) });
      await pages.budgets(main);
    } catch (x) { if (x instanceof ApiError) showErrors(summaryForm, x.errors); else throw x; }
  });
  main.replaceChildren(h("h1", {}, "Budgets"),
    ...(sections.length ? sections : [h("p", { class: "muted" }, "No budgets yet.")]),
    writable() ? (reports.length ? form : h("p", { class: "muted" }, "Create a cost report first: a budget follows one.")) : "",
    h("h2", {}, "Cost alerts"), costAlerts.length ? costAlertTable : h("p", { class: "muted" }, "No cost alerts yet (POST /v2/cost_alerts)."),
    h("h2", {}, "Report summaries"), summaries.length ? summaryTable : h("p", { class: "muted" }, "No scheduled summaries yet."),
    writable() && reports.length ? summaryForm : "",
    h("h2", {}, "Anomalies"), anomalies.length ? anomalyTable
      : h("p", { class: "muted" }, "No anomalies. Add an anomaly notification to a report (POST /v2/anomaly_notifications) to be told of them."),
    h("h2", {}, "Alert deliveries"), deliveries.length ? deliveryTable : h("p", { class: "muted" }, "No alert has fired yet."));
  document.title = "Budgets · costd";
};

// ----------------------------------------------------------------------------------------- allocation

/** "web=60, data=40" as a split's shares ([{value, pct}]); throws a sentence naming what is wrong. */
export function parseShares(text) {
  const shares = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = part.match(/^(.+?)\s*=\s*(-?[0-9]+(?:\.[0-9]+)?)\s*%?$/);
    if (!m) throw new Error(`“${part}” is not name=percentage (as in web=60)`);
    shares.push({ value: m[1].trim(), pct: m[2] });
  }
  if (!shares.length) throw new Error("give the shares as name=percentage, separated by commas (web=60, data=40)");
  return shares;
}

/**
 * A virtual tag's allocation from the rows of `/v2/costs?groupings=tag:<key>`: each value's exact sum (names of
 * a split's unallocated months end in "(unallocated)"; costs the tag leaves untagged are `null`), largest first,
 * and the total, which the values add up to exactly.
 */
export function allocationOf(rows, key) {
  const by = new Map();
  let total = "0";
  for (const r of rows) {
    const name = r[`tag:${key}`] ?? null;
    by.set(name, addDecimals(by.get(name) || "0", r.amount));
    total = addDecimals(total, r.amount);
  }
  const values = [...by.entries()].map(([name, amount]) => ({ name, amount,
    unallocated: name === null || name.endsWith("(unallocated)") }));
  values.sort((a, b) => Number(b.amount) - Number(a.amount));
  return { values, total };
}

/** The value rows of the virtual tag form: filter, and a name or a split (percentages, by a cost, by a metric). */
function valueEditor(metrics) {
  const rows = h("div", { id: "vt-values" });
  // `saved`: a saved tag's value to edit; what the form does not show (its token, date ranges, a metric's
  // labels) is sent back as it was.
  const add = (i, saved) => {
    const id = `vt-value-${i}`;
    const kind = h("select", { id: `${id}-kind` },
      h("option", { value: "name" }, "Name the cost"), h("option", { value: "percentages" }, "Split by percentages"),
      h("option", { value: "cost" }, "Split by another cost"), h("option", { value: "metric" }, "Split by a business metric"));
    const inputs = {
      filter: h("input", { type: "text", id: `${id}-filter`, placeholder: "costs.service = 'Support'" }),
      name: h("input", { type: "text", id: `${id}-name`, placeholder: "platform" }),
      shares: h("input", { type: "text", id: `${id}-shares`, placeholder: "web=60, data=40" }),
      basis: h("input", { type: "text", id: `${id}-basis`, placeholder: "costs.service = 'Compute'" }),
      tag: h("input", { type: "text", id: `${id}-tag`, placeholder: "team" }),
      metric: h("select", { id: `${id}-metric` }, metrics.map((m) => h("option", { value: m.token }, m.title))),
      display: h("input", { type: "text", id: `${id}-display`, placeholder: "Shared support" }),
    };
    const labelled = (key, label) => h("div", { class: "field", "data-part": key }, h("label", { for: inputs[key].id }, label), inputs[key]);
    const parts = {
      name: [labelled("name", "Name")],
      percentages: [labelled("shares", "Shares (name=percent)"), labelled("display", "Shown as")],
      cost: [labelled("basis", "In proportion to (VQL)"), labelled("tag", "by the tag"), labelled("display", "Shown as")],
      metric: [labelled("metric", "Metric"), labelled("display", "Shown as")],
    };
    const err = h("p", { class: "err", id: `${id}-err`, role: "alert" });
    const row = h("fieldset", { class: "vt-value", "data-index": i }, h("legend", {}, `Value ${i + 1}`),
      h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: inputs.filter.id }, "Costs matching (VQL)"), inputs.filter),
        h("div", { class: "field" }, h("label", { for: kind.id }, "Then"), kind),
        ...Object.values(parts).flat()), err);
    const shape = () => {
      for (const el of row.querySelectorAll("[data-part]")) el.hidden = !parts[kind.value].includes(el);
      // "Shown as" is shared by three kinds: show it once if the kind has it.
      const display = row.querySelectorAll("[data-part=display]");
      display.forEach((el, n) => { el.hidden = n > 0 || kind.value === "name"; });
    };
    if (saved) {
      inputs.filter.value = saved.filter || "";
      inputs.display.value = saved.display_name || "";
      if (saved.percentages && saved.percentages.length) {
        kind.value = "percentages";
        inputs.shares.value = saved.percentages.map((p) => `${p.value}=${p.pct}`).join(", ");
      } else if (saved.cost_metric) {
        kind.value = "cost";
        inputs.basis.value = saved.cost_metric.filter || "";
        inputs.tag.value = (saved.cost_metric.aggregation || {}).tag || "";
      } else if (saved.business_metric_token) {
        kind.value = "metric";
        inputs.metric.value = saved.business_metric_token;
      } else inputs.name.value = saved.name || "";
    }
    kind.addEventListener("change", shape);
    rows.append(row);
    shape();
    row.read = () => {
      const v = { filter: inputs.filter.value.trim() };
      if (saved) {
        if (saved.token) v.token = saved.token;
        if (saved.date_ranges && saved.date_ranges.length) v.date_ranges = saved.date_ranges;
        if (kind.value === "metric" && saved.business_metric_token === inputs.metric.value) {
          for (const f of ["label_key", "label_values", "label_transforms"]) if (saved[f]) v[f] = saved[f];
        }
      }
      const display = inputs.display.value.trim();
      if (kind.value === "name") v.name = inputs.name.value.trim();
      if (kind.value === "percentages") v.percentages = parseShares(inputs.shares.value);
      if (kind.value === "cost") v.cost_metric = { filter: inputs.basis.value.trim(), aggregation: { tag: inputs.tag.value.trim() } };
      if (kind.value === "metric") v.business_metric_token = inputs.metric.value;
      if (kind.value !== "name" && display) v.display_name = display;
      return v;
    };
  };
  add(0);
  return {
    element: rows, add: () => add(rows.children.length), rows: () => [...rows.children],
    /** The rows of a saved tag's values (one empty row for none). */
    set: (values) => { rows.replaceChildren(); (values.length ? values : [undefined]).forEach((v, i) => add(i, v)); },
  };
}

/** Puts `values[i]…` errors on value row i; the rest go to the form's own line. */
function showValueErrors(form, errors) {
  clearErrors(form);
  const general = [];
  for (const msg of errors) {
    const m = msg.match(/^values\[(\d+)\]/);
    const err = m && form.querySelector(`#vt-value-${m[1]}-err`);
    if (err) err.textContent = err.textContent ? `${err.textContent}\n${msg}` : msg;
    else if (/^key\b/.test(msg)) form.querySelector("#vt-key-err").textContent = msg;
    else general.push(msg);
  }
  form.querySelector(".form-err").textContent = general.join("\n");
}

/** The costs rows a draft tag would give (`POST /v2/virtual_tag_configs/preview`), every page. */
async function draftCosts(q, draft) {
  const rows = [];
  let url = `/v2/virtual_tag_configs/preview?${q}&limit=5000`;
  for (let i = 0; url && i < 200; i++) {
    const { body } = await api("POST", url, draft);
    rows.push(...body.costs);
    url = nextPath(body);
  }
  return { rows };
}

/**
 * How a virtual tag allocates the costs of `from..to`: each value's amount and share, what stays unallocated.
 * With `draft` (true), `tag` is a body not yet saved (a new tag, or a saved one's edit) and nothing is written.
 */
async function allocationPreview(tag, from, to, into, draft, onRefused) {
  const what = draft ? `${tag.key} (not saved)` : tag.key;
  into.replaceChildren(h("p", { class: "muted" }, `Allocating ${from} → ${to} by ${what}…`));
  const q = new URLSearchParams({ start_date: from, end_date: to, date_bin: "month", groupings: `tag:${tag.key}` });
  try {
    const { rows } = draft ? await draftCosts(q, tag) : await fetchCosts(q);
    const { values, total } = allocationOf(rows, tag.key);
    const pct = (a) => (Number(total) === 0 ? "—" : `${(100 * Number(a) / Number(total)).toFixed(1)}%`);
    const unallocated = values.filter((v) => v.unallocated).reduce((s, v) => addDecimals(s, v.amount), "0");
    into.replaceChildren(h("h3", {}, `How ${what} allocates ${from} → ${to}`),
      h("table", { id: "vtag-preview" },
        h("thead", {}, h("tr", {}, h("th", {}, "Value"), h("th", { class: "num" }, "Amount"), h("th", { class: "num" }, "Share"))),
        h("tbody", {}, values.map((v) => h("tr", { class: v.unallocated ? "unallocated" : "" },
          h("td", {}, v.name === null ? "(not tagged)" : v.name), h("td", { class: "num", title: v.amount }, money(v.amount)),
          h("td", { class: "num" }, pct(v.amount))))),
        h("tfoot", {}, h("tr", {}, h("th", {}, "Total"), h("th", { class: "num", title: total }, money(total)), h("th", {}, "")))),
      h("p", { class: "muted", id: "vtag-unallocated" }, `Unallocated or untagged: ${money(unallocated)} (${pct(unallocated)}). `,
        "The values add up to the total exactly; each split's shares are rounded once, the last takes the rest."));
  } catch (x) {
    // A draft's refusal belongs at its values (`onRefused`); anything else is said here.
    if (onRefused && x instanceof ApiError && x.status < 500) { into.replaceChildren(); onRefused(x.errors); }
    else into.replaceChildren(h("p", { class: "form-err", role: "alert" }, errorText(x)));
  }
}

// The preview's dates, kept while the page redraws.
const allocationState = {};

pages.allocation = async function allocationPage(main) {
  const [tags, metrics, rates, segments, me] = await Promise.all([
    getAll("/v2/virtual_tag_configs", "virtual_tag_configs"), getAll("/v2/business_metrics", "business_metrics").catch(() => []),
    getAll("/v2/exchange_rates", "exchange_rates").catch(() => []), getAll("/v2/segments", "segments").catch(() => []),
    get("/v2/me")]);
  const status = h("p", { id: "allocation-status", class: "ok", role: "status" });
  if (!allocationState.from) [allocationState.from, allocationState.to] = presetRange("this_month");
  const from = h("input", { type: "date", value: allocationState.from });
  const to = h("input", { type: "date", value: allocationState.to });
  from.addEventListener("change", () => { allocationState.from = from.value; });
  to.addEventListener("change", () => { allocationState.to = to.value; });
  const preview = h("div", { id: "vtag-preview-area", "aria-live": "polite" });
  const describe = (v) => v.percentages && v.percentages.length
    ? `${v.display_name || "split"}: ${v.percentages.map((p) => `${p.value} ${p.pct}%`).join(", ")}`
    : v.cost_metric ? `${v.display_name || "split"}: by ${v.cost_metric.aggregation.tag} of ${v.cost_metric.filter}`
      : v.business_metric_token ? `${v.display_name || "split"}: by metric ${v.business_metric_token}` : v.name;
  const tagTable = h("table", { id: "vtags-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Values, first match wins"), h("th", {}, ""))),
    h("tbody", {}, tags.map((t) => h("tr", {}, h("td", {}, t.key),
      h("td", {}, h("ol", {}, t.values.map((v) => h("li", {}, h("code", {}, v.filter || "(every cost)"), " → ", describe(v))))),
      h("td", { class: "nowrap" },
        h("button", { type: "button", class: "link", "aria-label": `Preview ${t.key}`, onclick: () => allocationPreview(t, from.value, to.value, preview) }, "Preview"),
        writable() ? h("button", { type: "button", class: "link", "aria-label": `Edit ${t.key}`, onclick: () => edit(t) }, "Edit") : "",
        writable() ? h("button", { type: "button", class: "link", "aria-label": `Delete ${t.key}`, onclick: async () => {
          if (!confirm(`Delete the virtual tag “${t.key}”?`)) return;
          try { await api("DELETE", `/v2/virtual_tag_configs/${t.token}`); await pages.allocation(main); } catch (x) { alert(errorText(x)); }
        } }, "Delete") : "")))));

  // A new virtual tag, or a saved one's edit: its key and ordered values; previewed without saving, or saved
  // whole or refused, each error at its value.
  const key = h("input", { type: "text", placeholder: "team" });
  const editor = valueEditor(metrics);
  const title = h("h2", { id: "new-vtag" }, "New virtual tag");
  const saveButton = h("button", { type: "submit" }, "Save and preview");
  let editing = null;
  const reset = () => {
    editing = null;
    key.value = "";
    editor.set([]);
    title.textContent = "New virtual tag";
    saveButton.textContent = "Save and preview";
    cancel.hidden = true;
    clearErrors(tagForm);
  };
  const cancel = h("button", { type: "button", class: "secondary", hidden: true, onclick: reset }, "Cancel edit");
  // The form's tag as a body: a saved tag's other settings (overriding, collapsed keys) kept, so its preview
  // is what saving would give. Null when a row cannot be read (its error shown at the row).
  const body = () => {
    const values = [];
    const problems = [];
    editor.rows().forEach((row, i) => {
      try { values.push(row.read()); } catch (x) { problems.push(`values[${i}]: ${x.message}`); }
    });
    if (problems.length) { showValueErrors(tagForm, problems); return null; }
    const out = { key: key.value.trim(), values };
    if (editing) {
      out.overridable = editing.overridable;
      out.collapsed_tag_keys = editing.collapsed_tag_keys;
    }
    return out;
  };
  const previewDraft = async () => {
    const draft = body();
    if (!draft) return;
    clearErrors(tagForm);
    await allocationPreview(draft, from.value, to.value, preview, true, (errors) => showValueErrors(tagForm, errors));
  };
  const tagForm = h("form", { class: "panel", id: "vtag-form", "aria-labelledby": "new-vtag" }, title,
    field("vt-key", "Key", key, ["key"]), editor.element,
    h("div", { class: "row" }, h("button", { type: "button", class: "secondary", onclick: editor.add }, "Add value"),
      h("button", { type: "button", class: "secondary", id: "vt-preview-draft", onclick: previewDraft }, "Preview without saving"),
      saveButton, cancel),
    h("p", { class: "form-err", role: "alert" }));
  const edit = (t) => {
    reset();
    editing = t;
    key.value = t.key;
    editor.set(t.values);
    title.textContent = `Edit virtual tag “${t.key}”`;
    saveButton.textContent = "Save changes and preview";
    cancel.hidden = false;
    key.focus();
  };
  tagForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const draft = body();
    if (!draft) return;
    try {
      const made = editing
        ? (await api("PUT", `/v2/virtual_tag_configs/${editing.token}`, { key: draft.key, values: draft.values })).body
        : (await api("POST", "/v2/virtual_tag_configs", draft)).body;
      await pages.allocation(main);
      main.querySelector("#allocation-status").textContent = `Saved the virtual tag “${made.key}”.`;
      await allocationPreview(made, allocationState.from, allocationState.to, main.querySelector("#vtag-preview-area"));
    } catch (x) { if (x instanceof ApiError) showValueErrors(tagForm, x.errors); else throw x; }
  });

  // Segments, as a tree: each with its priority and filter; a form to add one.
  const depth = (s) => { let d = 0; for (let p = s; p && p.parent_segment_token; p = segments.find((x) => x.token === p.parent_segment_token)) d++; return d; };
  const ordered = [];
  const place = (parent) => segments.filter((s) => (s.parent_segment_token || null) === parent)
    .sort((a, b) => (a.title === "Unallocated Costs") - (b.title === "Unallocated Costs") || a.priority - b.priority)
    .forEach((s) => { ordered.push(s); place(s.token); });
  place(null);
  const segmentTable = h("table", { id: "segments-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Segment"), h("th", { class: "num" }, "Priority"), h("th", {}, "Filter"), h("th", {}, ""))),
    h("tbody", {}, ordered.map((s) => h("tr", {},
      h("td", { class: `depth-${Math.min(depth(s), 7)}` }, s.title), h("td", { class: "num" }, String(s.priority)),
      h("td", {}, h("code", {}, s.filter || "(the rest)")),
      h("td", { class: "nowrap" }, h("a", { href: `#/costs?report=${s.report_token}` }, "Costs"), " ",
        writable() && s.title !== "Unallocated Costs" ? h("button", { type: "button", class: "link", "aria-label": `Delete ${s.title}`, onclick: async () => {
          try { await api("DELETE", `/v2/segments/${s.token}`); await pages.allocation(main); } catch (x) { alert(errorText(x)); }
        } }, "Delete") : "")))));
  const seg = { title: h("input", { type: "text" }), parent: h("select", {}, h("option", { value: "" }, "(top level)"),
    ordered.filter((s) => s.title !== "Unallocated Costs").map((s) => h("option", { value: s.token }, s.title))),
  priority: h("input", { type: "number", min: 0, placeholder: "100" }), filter: h("input", { type: "text", placeholder: "costs.provider = 'aws'" }),
  track: h("input", { type: "checkbox" }) };
  const segmentForm = h("form", { class: "panel", id: "segment-form", "aria-labelledby": "new-segment" }, h("h2", { id: "new-segment" }, "New segment"),
    h("div", { class: "row" }, field("sg-title", "Title", seg.title, ["title"]), field("sg-parent", "Inside", seg.parent, ["parent_segment_token"]),
      field("sg-priority", "Priority (lower first)", seg.priority, ["priority"]), field("sg-filter", "Filter (VQL)", seg.filter, ["filter"])),
    h("label", { class: "nowrap" }, seg.track, " Track its unallocated costs"),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Create segment")), h("p", { class: "form-err", role: "alert" }));
  segmentForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { title: seg.title.value, track_unallocated: seg.track.checked };
    if (seg.parent.value) body.parent_segment_token = seg.parent.value;
    if (seg.priority.value) body.priority = Number(seg.priority.value);
    if (seg.filter.value.trim()) body.filter = seg.filter.value.trim();
    try { await api("POST", "/v2/segments", body); await pages.allocation(main); }
    catch (x) { if (x instanceof ApiError) showErrors(segmentForm, x.errors); else throw x; }
  });

  // Business metrics: a title and a values file, stored together or not at all.
  const metricTitle = h("input", { type: "text" });
  const metricFile = h("input", { type: "file", accept: ".csv,text/csv" });
  const metricForm = h("form", { class: "panel", id: "metric-form", "aria-labelledby": "new-metric" }, h("h2", { id: "new-metric" }, "Upload a business metric"),
    h("p", { class: "muted" }, "A CSV of ", h("code", {}, "date,amount,label"), " rows (the label may be empty)."),
    h("div", { class: "row" }, field("m-title", "Title", metricTitle, ["title"]), field("m-file", "Values (CSV)", metricFile, ["csv", "values"])),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Upload")), h("p", { class: "form-err", role: "alert" }));
  metricForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(metricForm);
    if (!metricFile.files[0]) { metricForm.querySelector("#m-file-err").textContent = "choose a CSV file"; return; }
    let made = null;
    try {
      made = (await api("POST", "/v2/business_metrics", { title: metricTitle.value })).body;
      await upload(`/v2/business_metrics/${made.token}/values.csv`, metricFile.files[0], () => {}, "PUT");
      await pages.allocation(main);
      main.querySelector("#allocation-status").textContent = `Uploaded the business metric “${made.title}”.`;
    } catch (x) {
      // A refused file leaves no empty metric behind.
      if (made) await api("DELETE", `/v2/business_metrics/${made.token}`).catch(() => {});
      if (x instanceof ApiError && !made) showErrors(metricForm, x.errors);
      else metricForm.querySelector("#m-file-err").textContent = errorText(x);
    }
  });
  const metricTable = h("table", { id: "metrics-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Metric"), h("th", {}, "Reports"), h("th", {}, "Token"))),
    h("tbody", {}, metrics.map((m) => h("tr", {}, h("td", {}, m.title), h("td", {}, String((m.cost_report_tokens_with_metadata || []).length)),
      h("td", { class: "token" }, m.token)))));

  // Exchange rates: a file of base,currency,rate,date, stored whole or refused line by line.
  const ratesFile = h("input", { type: "file", accept: ".csv,text/csv" });
  const ratesForm = h("form", { class: "panel", id: "rates-form", "aria-labelledby": "new-rates" }, h("h2", { id: "new-rates" }, "Upload exchange rates"),
    h("p", { class: "muted" }, "A CSV of ", h("code", {}, "base_currency_code,currency_code,rate,date"), " rows, each rate in force from its date."),
    h("div", { class: "row" }, field("x-file", "Rates (CSV)", ratesFile, ["csv"]), h("div", { class: "field" }, h("button", { type: "submit" }, "Upload"))),
    h("p", { class: "form-err", role: "alert" }));
  ratesForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(ratesForm);
    if (!ratesFile.files[0]) { ratesForm.querySelector("#x-file-err").textContent = "choose a CSV file"; return; }
    try {
      await upload("/v2/exchange_rates/csv", ratesFile.files[0], () => {});
      await pages.allocation(main);
      main.querySelector("#allocation-status").textContent = "Uploaded the exchange rates.";
    } catch (x) { ratesForm.querySelector("#x-file-err").textContent = errorText(x); }
  });
  const latest = [...rates].sort((a, b) => (a.effective_date < b.effective_date ? 1 : -1)).slice(0, 20);
  const ratesTable = h("table", { id: "rates-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "From"), h("th", {}, "To"), h("th", { class: "num" }, "Rate"), h("th", {}, "In force from"))),
    h("tbody", {}, latest.map((r) => h("tr", {}, h("td", {}, r.base_currency_code), h("td", {}, r.currency_code),
      h("td", { class: "num" }, r.rate), h("td", {}, String(r.effective_date).slice(0, 10))))));

  // A workspace's currency: costs shown converted by the rates above.
  const ws = h("select", {}, me.workspaces.map((w) => h("option", { value: w.token }, w.name)));
  const currency = h("input", { type: "text", maxlength: 3, placeholder: "USD" });
  const convert = h("input", { type: "checkbox" });
  const rateDate = h("select", {}, h("option", { value: "daily_rate" }, "the cost's day"),
    h("option", { value: "end_of_billing_period_rate" }, "the end of its month"));
  const fill = async () => {
    const w = await get(`/v2/workspaces/${ws.value}`).catch(() => null);
    if (!w) return;
    currency.value = w.currency || "USD";
    convert.checked = !!w.enable_currency_conversion;
    rateDate.value = w.exchange_rate_date || "daily_rate";
  };
  ws.addEventListener("change", fill);
  const currencyForm = h("form", { class: "panel", id: "currency-form", "aria-labelledby": "ws-currency" }, h("h2", { id: "ws-currency" }, "Workspace currency"),
    h("div", { class: "row" }, field("w-ws", "Workspace", ws, ["workspace_token"]), field("w-currency", "Currency", currency, ["currency"]),
      field("w-rate-date", "Rate of", rateDate, ["exchange_rate_date"])),
    h("label", { class: "nowrap" }, convert, " Convert every cost to this currency"),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Save currency")), h("p", { class: "form-err", role: "alert" }));
  currencyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(currencyForm);
    try {
      await api("PUT", `/v2/workspaces/${ws.value}`, { currency: currency.value.trim().toUpperCase(),
        enable_currency_conversion: convert.checked, exchange_rate_date: rateDate.value });
      costsCache.clear();
      main.querySelector("#allocation-status").textContent = `Saved: costs in ${currency.value.trim().toUpperCase()}${convert.checked ? ", converted" : ""}.`;
    } catch (x) { if (x instanceof ApiError) showErrors(currencyForm, x.errors); else throw x; }
  });
  if (me.workspaces.length) await fill();

  main.replaceChildren(h("h1", {}, "Allocation"), status,
    h("section", { "aria-labelledby": "vtags-title" }, h("h2", { id: "vtags-title" }, "Virtual tags"),
      tags.length ? tagTable : h("p", { class: "muted" }, "No virtual tags yet."),
      h("div", { class: "row" }, field("p-from", "Preview from", from, []), field("p-to", "to", to, [])), preview,
      writable() ? tagForm : ""),
    h("section", { "aria-labelledby": "segments-title" }, h("h2", { id: "segments-title" }, "Segments"),
      segments.length ? segmentTable : h("p", { class: "muted" }, "No segments yet."), writable() ? segmentForm : ""),
    h("section", { "aria-labelledby": "metrics-title" }, h("h2", { id: "metrics-title" }, "Business metrics"),
      metrics.length ? metricTable : h("p", { class: "muted" }, "No business metrics yet."), writable() ? metricForm : ""),
    h("section", { "aria-labelledby": "rates-title" }, h("h2", { id: "rates-title" }, "Exchange rates"),
      rates.length ? ratesTable : h("p", { class: "muted" }, "No exchange rates yet."), writable() ? ratesForm : ""),
    writable() && me.workspaces.length ? currencyForm : "");
  document.title = "Allocation · costd";
};
