"""Vantage's Python client (vantage-python, strict pydantic models), unmodified, against costd.

Drives every endpoint costd implements with only the base URL changed, and checks the answers a user would
rely on: exact amounts, rules applied for a managed account, errors as VantageAPIError with their messages.
Run by tests/clients/run.sh, which starts costd and sets COSTD_URL, COSTD_TOKEN, COSTD_BIN, COSTD_DATA_DIR
and COSTD_DATABASE_URL.
"""

import glob
import importlib.metadata
import mailbox
import os
import shutil
import subprocess
import sys
import urllib.request
from decimal import ROUND_HALF_UP, Decimal, localcontext

from vantage import (
    CreateSegment,
    ReportSettings,
    UpdateSegment,
    AttachedCostReportForBusinessMetric,
    BusinessMetricValue,
    CreateBusinessMetric,
    UpdateBusinessMetric,
    UpdateMe,
    UpdateTag,
    CreateVirtualTagConfig,
    UpdateVirtualTagConfig,
    UpdateAsyncVirtualTagConfig,
    VirtualTagConfigValue,
    VirtualTagConfigValueDateRange,
    VirtualTagConfigValuePercentage,
    AdjustmentItem,
    BankingInformation,
    BillingInformation,
    BillingInformationAttributes,
    Client,
    CreateBillingProfile,
    CreateInvoice,
    DownloadInvoiceRequest,
    InvoiceAdjustment,
    UpdateBillingProfile,
    CreateBillingRule,
    CreateCostExport,
    CreateUnitCostsExport,
    CreateBudget,
    CreateCostAlert,
    CreateReportNotification,
    CreateAnomalyNotification,
    UpdateAnomalyNotification,
    UpdateCostAlert,
    CreateBudgetAlert,
    BudgetPeriod,
    CreateCostReport,
    UpdateBudget,
    UpdateBudgetAlert,
    CreateCustomProviderIntegration,
    CreateFolder,
    CreateSavedFilter,
    Settings,
    UpdateCostReport,
    UpdateFolder,
    UpdateSavedFilter,
    CreateManagedAccount,
    CreateWorkspace,
    UpdateBillingRule,
    UpdateIntegration,
    UpdateManagedAccount,
    UpdateWorkspace,
    VantageAPIError,
)

URL = os.environ["COSTD_URL"]
SAMPLE = os.environ["COSTD_FOCUS_SAMPLE"]
SMALL = """ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId
Usage,2024-07-05,100,EC2,us-east-1
Tax,2024-07-06,10,EC2,us-east-1
Usage,2024-07-07,50.5,S3,eu-west-1
"""
JULY = {"start_date": "2024-07-01", "end_date": "2024-07-31"}
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise AssertionError(what)


def expect_error(status, fn, contains=""):
    try:
        fn()
    except VantageAPIError as e:
        check(e.status == status, f"expected {status}, got {e.status}: {e.body}")
        check(isinstance(e.errors, list) and e.errors, f"errors list in {e.body}")
        check(contains in " | ".join(e.errors), f"expected {contains!r} in {e.errors}")
        return e
    raise AssertionError(f"expected a {status}")


def mint(account, scope):
    cmd = [os.environ["COSTD_BIN"], "token", "create", "--account", account, "--scope", scope,
           "--data-dir", os.environ["COSTD_DATA_DIR"]]
    if os.environ.get("COSTD_DATABASE_URL"):
        cmd += ["--database-url", os.environ["COSTD_DATABASE_URL"]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)  # stderr: costd's note about the secret
    return out.stdout.strip()


def add_user(email, name):
    """Adds a user to the bootstrap account's directory (`costd user add`); answers its token."""
    cmd = [os.environ["COSTD_BIN"], "user", "add", "--account", os.environ["COSTD_ACCOUNT"], "--email", email,
           "--name", name, "--data-dir", os.environ["COSTD_DATA_DIR"]]
    if os.environ.get("COSTD_DATABASE_URL"):
        cmd += ["--database-url", os.environ["COSTD_DATABASE_URL"]]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def fetch(url):
    with urllib.request.urlopen(url) as r:
        return r.read()


def pdf_text(data):
    if not shutil.which("pdftotext"):
        check(not os.environ.get("CI"), "CI must have pdftotext (poppler-utils)")
        print("python client: SKIPPED the PDF text check (no pdftotext)")
        return None
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def discovery(client):
    """What the uploads hold: the small CSV and the FOCUS sample (tags application, environment, business_unit)."""
    check([p.key for p in client.cost_providers.list().cost_providers] == ["custom_provider"], "cost providers")
    services = [s.name for s in client.cost_services.list().cost_services]
    check({"EC2", "S3"} <= set(services) and services == sorted(services), f"cost services {services}")
    tags = client.tags.list(search_query="ENVIRON").tags
    check([t.tag_key for t in tags] == ["environment"] and not tags[0].hidden, f"tags {tags}")
    check(tags[0].providers and tags[0].providers[0].startswith("custom_provider:"), f"{tags[0].providers}")
    values = client.tags.get_values("environment", sort_direction="asc").tag_values
    check("prod" in [v.tag_value for v in values], f"tag values {values}")
    check(len(client.tags.list(limit=2, page=1).tags) == 2, "tags paged")
    expect_error(404, lambda: client.tags.get_values("no/such key"), "no costs carry")


def data_export(client):
    """An export of July by service (EC2 100 + tax 10, S3 50.5), polled until done, its CSV fetched."""
    import time
    location = client.costs.create_export(CreateCostExport(start_date="2024-07-01", end_date="2024-07-31",
                                                           date_bin="month"), groupings=["service"])
    check(isinstance(location, str) and "/v2/data_exports/dta_xprt_" in location, f"location {location}")
    token = location.rsplit("/", 1)[1]
    for _ in range(200):
        export = client.data_exports.get(token)
        if export.status != "pending":
            break
        time.sleep(0.05)
    check(export.status == "completed" and len(export.manifest.files) == 1, f"{export}")
    req = urllib.request.Request(export.manifest.files[0], headers={"Authorization": f"Bearer {os.environ['COSTD_TOKEN']}"})
    with urllib.request.urlopen(req) as r:
        csv_text = r.read().decode()
    check(csv_text == "accrued_at,service,amount,currency\n2024-07-01,EC2,110.0,USD\n2024-07-01,S3,50.5,USD\n",
          f"export CSV {csv_text!r}")
    expect_error(400, lambda: client.costs.create_export(CreateCostExport(schema="focus")), "schema")
    expect_error(404, lambda: client.data_exports.get("dta_xprt_0000000000000000"))


def report_date_shapes(client):
    """The client requires end_date and previous_period_end_date on every report: each shape it can send."""
    named = client.cost_reports.create(CreateCostReport(
        title="Last month", date_interval="last_month", end_date="2024-01-31", previous_period_end_date="2023-12-31"))
    check(named.date_interval == "last_month" and named.start_date is None and named.end_date is None, f"{named}")
    ends = client.cost_reports.create(CreateCostReport(
        title="March to the 20th", end_date="2024-03-20", previous_period_end_date="2024-02-20"))
    check((ends.date_interval, ends.start_date, ends.end_date) == ("custom", "2024-03-01", "2024-03-20"), f"{ends}")
    check((ends.previous_period_start_date, ends.previous_period_end_date) == ("2024-02-01", "2024-02-20"), f"{ends}")
    quarter = client.cost_reports.create(CreateCostReport(
        title="Q2", start_date="2024-04-01", end_date="2024-06-30", previous_period_end_date="2023-06-30"))
    check((quarter.previous_period_start_date, quarter.previous_period_end_date) == ("2023-04-01", "2023-06-30"),
          f"{quarter}")
    for r in (named, ends, quarter):
        client.cost_reports.delete(r.token)


def budgets(client, report):
    """A budget on the July EC2 report (its usage filter: EC2 100), its performance, an alert on it."""
    budget = client.budgets.create(CreateBudget(name="EC2 July", cost_report_token=report, periods=[
        BudgetPeriod(start_at="2024-07-01", end_at="", amount="200"),
        BudgetPeriod(start_at="2024-08-01", end_at="2024-08-31", amount="150.25")]))
    check(budget.token.startswith("bdgt_") and budget.cost_report_token == report, f"{budget}")
    check([(p.start_at[:10], p.end_at[:10], p.amount) for p in budget.periods]
          == [("2024-07-01", "2024-07-31", "200.0"), ("2024-08-01", "2024-08-31", "150.25")], f"{budget.periods}")
    shown = client.budgets.get(budget.token, include_performance=True)
    check([(p.date[:10], p.actual, p.amount) for p in shown.performance]
          == [("2024-07-01", "100.0", "200.0"), ("2024-08-01", "0.0", "150.25")], f"{shown.performance}")
    alert = client.budget_alerts.create(CreateBudgetAlert(
        budget_tokens=[budget.token], threshold=50, duration_in_days="", recipient_channels=["finops@example.com"]))
    check(alert.threshold == 50 and alert.duration_in_days is None and alert.period_to_track == "start_of_the_month",
          f"{alert}")
    check(client.budgets.get(budget.token).budget_alert_tokens == [alert.token], "budget_alert_tokens")
    # Users: added by the operator, listed by the client, named by user_tokens; a stranger's token is a 400.
    ana = add_user("ana@example.com", "Ana")
    users = client.users.list().users
    # (The TypeScript scenario, run first on the same server, added its own user.)
    check([(u.email, u.name, u.role) for u in users if u.token == ana] == [("ana@example.com", "Ana", "Admin")],
          f"{users}")
    check(client.users.get(ana).email == "ana@example.com", "get user")
    check(client.budget_alerts.update(alert.token, UpdateBudgetAlert(user_tokens=[ana])).user_tokens == [ana],
          "a user as a budget alert's recipient")
    expect_error(400, lambda: client.budget_alerts.update(alert.token, UpdateBudgetAlert(
        user_tokens=["usr_0000000000000000"])), "user_tokens[0]")
    expect_error(404, lambda: client.users.get("usr_0000000000000000"))
    moved = client.budget_alerts.update(alert.token, UpdateBudgetAlert(threshold=90, duration_in_days="10"))
    check((moved.threshold, moved.duration_in_days) == (90, 10), f"{moved}")
    check([a.token for a in client.budget_alerts.list().budget_alerts] == [alert.token], "list budget alerts")
    check(client.budgets.update(budget.token, UpdateBudget(name="EC2")).name == "EC2", "rename a budget")
    expect_error(400, lambda: client.budget_alerts.create(CreateBudgetAlert(
        budget_tokens=[budget.token], threshold=0, duration_in_days="")), "threshold")
    ws = client.cost_reports.get(report).workspace_token
    jump = client.cost_alerts.create(CreateCostAlert(
        title="Monthly jump", interval="month", threshold=25.5, unit_type="percentage", workspace_token=ws,
        report_tokens=[report], email_recipients=["finops@example.com"], minimum_threshold=10))
    check(jump.token.startswith("cst_alrt_") and jump.threshold == 25.5 and jump.minimum_threshold == 10, f"{jump}")
    check(client.cost_alerts.get(jump.token).report_tokens == [report], "get cost alert")
    check(client.cost_alerts.get_events(jump.token).cost_alert_events == [], "no cost alert events yet")
    check(client.cost_alerts.update(jump.token, UpdateCostAlert(threshold=50)).threshold == 50, "update cost alert")
    check([a.token for a in client.cost_alerts.list().cost_alerts] == [jump.token], "list cost alerts")
    expect_error(400, lambda: client.cost_alerts.create(CreateCostAlert(
        title="x", interval="hour", threshold=1, unit_type="currency", workspace_token=ws, report_tokens=[report])),
        "interval")
    client.cost_alerts.delete(jump.token)
    summary = client.report_notifications.create(CreateReportNotification(
        title="Weekly EC2", cost_report_token=report, frequency="weekly", change="percentage",
        recipient_channels=["finops@example.com"]))
    check(summary.token.startswith("rprt_ntfctn_") and summary.frequency == "weekly", f"{summary}")
    check(client.report_notifications.get(summary.token).change == "percentage", "get report notification")
    check([n.token for n in client.report_notifications.list().report_notifications] == [summary.token],
          "list report notifications")
    client.report_notifications.delete(summary.token)
    watch = client.anomaly_notifications.create(CreateAnomalyNotification(
        cost_report_token=report, threshold=25, recipient_channels=["finops@example.com"]))
    check(watch.token.startswith("anmly_ntfctn_") and watch.threshold == 25, f"{watch}")
    check(client.anomaly_notifications.get(watch.token).cost_report_token == report, "get anomaly notification")
    check(client.anomaly_notifications.update(watch.token, UpdateAnomalyNotification(threshold=40)).threshold == 40,
          "update anomaly notification")
    check([n.token for n in client.anomaly_notifications.list().anomaly_notifications] == [watch.token],
          "list anomaly notifications")
    check(client.anomaly_alerts.list().anomaly_alerts == [], "no anomaly alerts without history")
    expect_error(400, lambda: client.anomaly_notifications.create(CreateAnomalyNotification(
        cost_report_token=report, recipient_channels=["not an address"])), "recipient")
    client.anomaly_notifications.delete(watch.token)
    expect_error(404, lambda: client.anomaly_notifications.get(watch.token))
    expect_error(404, lambda: client.cost_alerts.get(jump.token))
    expect_error(409, lambda: client.budgets.delete(budget.token), "budget alert")
    expect_error(409, lambda: client.cost_reports.delete(report), "follow this report")
    client.budget_alerts.delete(alert.token)
    client.budgets.delete(budget.token)
    expect_error(404, lambda: client.budgets.get(budget.token))


def reports(client):
    """Saved filters, folders and cost reports, and costs running a report (July: EC2 100 + tax 10)."""
    ec2 = client.saved_filters.create(CreateSavedFilter(title="EC2 only", filter="costs.service = 'EC2'"))
    check(ec2.token.startswith("svd_fltr_") and ec2.filter == "costs.service = 'EC2'", f"{ec2}")
    folder = client.folders.create(CreateFolder(title="FinOps", saved_filter_tokens=[ec2.token]))
    check(folder.saved_filter_tokens == [ec2.token] and folder.parent_folder_token is None, f"{folder}")
    # The client requires end_date and previous_period_end_date; an empty string is none.
    report = client.cost_reports.create(CreateCostReport(
        title="July EC2", folder_token=folder.token, groupings="service,region", start_date="2024-07-01",
        end_date="2024-07-31", previous_period_end_date="", settings=Settings()))
    check(report.date_interval == "custom" and report.previous_period_start_date == "2024-06-01", f"{report}")
    check(report.workspace_token == folder.workspace_token and report.chart_type == "line", f"{report}")
    ran = client.costs.list(cost_report_token=report.token)
    check(ran.total_cost.amount == "110.0", f"report total {ran.total_cost.amount}")
    check([(c.service, c.region) for c in ran.costs] == [("EC2", "us-east-1")] * 2, f"{ran.costs}")
    by_month = client.costs.list(cost_report_token=report.token, groupings=["service"], date_bin="month")
    check([(c.accrued_at[:10], c.amount) for c in by_month.costs] == [("2024-07-01", "110.0")], f"{by_month.costs}")
    check(client.cost_reports.get(report.token).title == "July EC2", "get report")
    check([r.token for r in client.cost_reports.list(folder_token=folder.token).cost_reports] == [report.token],
          "list reports by folder")
    tax = client.saved_filters.create(CreateSavedFilter(title="Tax", filter="costs.charge_type = 'Tax'"))
    updated = client.cost_reports.update(report.token, UpdateCostReport(saved_filter_tokens=[tax.token],
                                                                        date_interval="custom"))
    check(updated.saved_filter_tokens == [tax.token] and updated.start_date == "2024-07-01", f"{updated}")
    check(client.costs.list(cost_report_token=report.token).total_cost.amount == "10.0", "report with the tax filter")
    check(client.saved_filters.get(tax.token).cost_report_tokens == [report.token], "cost_report_tokens")
    client.saved_filters.update(tax.token, UpdateSavedFilter(filter="costs.charge_type = 'Usage'"))
    check(client.costs.list(cost_report_token=report.token).total_cost.amount == "100.0", "edited saved filter")
    # Its forecast: each day the average of its weekday over the four weeks before (EC2 100 on Friday 5 July).
    forecast = client.cost_reports.get_forecasted_costs(report.token, start_date="2024-08-01", end_date="2024-08-03",
                                                        provider="all", service="all")
    check([(f.date, f.amount) for f in forecast.forecasted_costs]
          == [("2024-08-01", "0.0"), ("2024-08-02", "25.0"), ("2024-08-03", "0.0")] and forecast.currency == "USD",
          f"forecast {forecast}")
    check(client.folders.update(folder.token, UpdateFolder(title="Cloud")).title == "Cloud", "update folder")
    check(len(client.folders.list().folders) == 1 and len(client.saved_filters.list().saved_filters) == 2, "lists")
    expect_error(400, lambda: client.cost_reports.create(CreateCostReport(
        title="bad", filter="costs.colour = 'red'", end_date="", previous_period_end_date="")), "filter")
    expect_error(409, lambda: client.folders.delete(folder.token), "move or delete")
    budgets(client, report.token)
    client.cost_reports.delete(report.token)
    expect_error(404, lambda: client.cost_reports.get(report.token))
    expect_error(404, lambda: client.costs.list(cost_report_token=report.token))
    client.folders.delete(folder.token)
    for f in (ec2, tax):
        client.saved_filters.delete(f.token)
    check(client.saved_filters.list().saved_filters == [], "saved filters gone")


def invoicing(client, managed, mine):
    """Billing profiles and invoices through client.billing_profiles and client.invoices, with the models."""
    profile = client.billing_profiles.create(CreateBillingProfile(
        nickname="Py EU",
        billing_information_attributes=BillingInformation(
            token="", company_name="Py MSP Ltd", country_code="gb", address_line_1="1 High St", address_line_2=None,
            city="London", state=None, postal_code="EC1A 1BB", billing_email=["billing@pymsp.example"]),
        banking_information_attributes=BankingInformation(
            token="", bank_name="Py Bank", beneficiary_name="Py MSP Ltd", tax_id="GB123456789"),
        invoice_adjustment_attributes=InvoiceAdjustment(token="", adjustment_items=[
            AdjustmentItem(name="VAT", adjustment_type="charge", calculation_type="percentage", amount="10")])))
    check(profile.token.startswith("bllng_prfl_") and profile.billing_information_attributes.country_code == "GB",
          f"{profile}")
    check(profile.invoice_adjustment_attributes.adjustment_items[0].amount == "10.0", f"{profile}")
    check(client.billing_profiles.get(profile.token).nickname == "Py EU", "get profile")
    check(client.billing_profiles.update(profile.token, UpdateBillingProfile(nickname="Py UK")).nickname == "Py UK",
          "update profile")
    check(any(p.token == profile.token for p in client.billing_profiles.list().billing_profiles), "list profiles")
    m = client.managed_accounts.update(managed.token, UpdateManagedAccount(
        msp_billing_profile_token=profile.token, payment_terms_days=15,
        billing_information_attributes=BillingInformationAttributes(
            company_name="Py Acme Inc", billing_email=["ap@pyacme.example"])))
    check(m.msp_billing_profile_token == profile.token and m.payment_terms_days == 15, f"{m}")
    check(client.billing_profiles.get(profile.token).managed_accounts_count == "1", "profile in use")
    expect_error(409, lambda: client.billing_profiles.delete(profile.token), "used by 1 managed account")

    # July as the managed account sees it, every kind of cost: 145.75; plus 10 % VAT = 160.325 → 160.33.
    invoice = client.invoices.create(CreateInvoice(
        billing_period_start="2024-07-01", billing_period_end="2024-07-31", account_token=managed.token))
    check(invoice.status == "draft" and invoice.total == "160.33", f"{invoice}")
    check(invoice.account_name == "Py Acme Inc" and invoice.msp_account_token == managed.parent_account_token,
          f"{invoice}")
    check(client.invoices.get(invoice.token).invoice_number == invoice.invoice_number, "get invoice")
    listed = client.invoices.list(managed_account_token=managed.token).invoices
    check([i.token for i in listed] == [invoice.token], f"{listed}")
    check(client.invoices.regenerate(invoice.token).invoice_number == invoice.invoice_number, "regenerate")
    expect_error(409, lambda: client.invoices.create(CreateInvoice(
        billing_period_start="2024-07-15", billing_period_end="2024-08-14", account_token=managed.token)), "already")
    expect_error(400, lambda: client.invoices.create(CreateInvoice(
        billing_period_start="2024-08-31", billing_period_end="2024-08-01", account_token=managed.token)),
        "must not be before")
    expect_error(403, lambda: mine.invoices.list())

    pdf = fetch(client.invoices.download(invoice.token, DownloadInvoiceRequest(file_type="pdf")).download_url)
    check(pdf.startswith(b"%PDF-"), "a PDF")
    text = pdf_text(pdf)
    if text is not None:
        check(invoice.invoice_number in text and "USD 160.33" in text and "Py MSP Ltd" in text, text)
    csv = fetch(client.invoices.download(invoice.token, DownloadInvoiceRequest(file_type="csv")).download_url).decode()
    check(csv.strip().endswith("160.33,USD,160.33"), csv)
    report = fetch(client.invoices.get_cost_report(invoice.token).cost_report_url).decode()
    check(report.startswith("date,provider,service,charge_type,amount,currency"), report)

    maildir = os.environ.get("COSTD_SMTP_MAILDIR")
    if maildir:
        sent = client.invoices.send(invoice.token)
        check(sent.recipients == ["ap@pyacme.example"], f"{sent}")
        check(client.invoices.get(invoice.token).status == "sent", "sent")
        messages = list(mailbox.Maildir(maildir, create=False))
        check(any(invoice.invoice_number in (msg["Subject"] or "") and msg["To"] == "ap@pyacme.example"
                  for msg in messages), f"the email arrived: {[msg['Subject'] for msg in messages]}")
        expect_error(409, lambda: client.invoices.regenerate(invoice.token), "cannot be regenerated")
        check(client.invoices.send_and_approve(invoice.token).recipients == ["ap@pyacme.example"], "approve")
        check(client.invoices.get(invoice.token).status == "approved", "approved")
    else:
        expect_error(400, lambda: client.invoices.send(invoice.token), "--smtp-url")
    client.managed_accounts.update(managed.token, UpdateManagedAccount(msp_billing_profile_token=""))
    client.billing_profiles.delete(profile.token)
    expect_error(404, lambda: client.billing_profiles.get(profile.token))


def virtual_tags(client, mine):
    """A virtual tag splitting EC2 25/75 and naming S3, through client.virtual_tag_configs, read by costs."""
    tag = client.virtual_tag_configs.create(CreateVirtualTagConfig(key="py-team", overridable=True, values=[
        VirtualTagConfigValue(filter="costs.service = 'EC2'", percentages=[
            VirtualTagConfigValuePercentage(value="web", pct=25.0),
            VirtualTagConfigValuePercentage(value="data", pct=75.0)]),
        VirtualTagConfigValue(filter="costs.service = 'S3'", name="storage",
                              date_ranges=[VirtualTagConfigValueDateRange(start_date="2024-07-01", end_date=None)]),
    ]))
    check(tag.token.startswith("vtag_") and tag.key == "py-team" and len(tag.values) == 2, f"{tag}")
    check([p.pct for p in tag.values[0].percentages] == [25.0, 75.0], f"{tag.values[0]}")
    check(client.virtual_tag_configs.get(tag.token).values[1].name == "storage", "get virtual tag")
    check(any(t.token == tag.token for t in client.virtual_tag_configs.list().virtual_tag_configs), "list virtual tags")
    check(client.virtual_tag_configs.get_status(tag.token).processing is False, "virtual tag status")
    pending = client.virtual_tag_configs.update_async(tag.token, UpdateAsyncVirtualTagConfig(overridable=False))
    check(pending.status_url == f"/v2/virtual_tag_configs/async/{pending.request_id}", f"{pending}")
    check(client.virtual_tag_configs.get_async_virtual_tag_config_status(pending.request_id) is True, "async update applied")
    check(client.virtual_tag_configs.get_async_virtual_tag_config_status("no-such-request") is False, "unknown request")
    # EC2 in July is 110 (with its 10 of tax): a quarter is web's, S3's 50.5 is storage's.
    web = client.costs.list(filter="tags.name = 'py-team' AND tags.value = 'web'", **JULY)
    check(web.total_cost.amount == "27.5", f"web's share {web.total_cost.amount}")
    storage = client.costs.list(filter="tags.name = 'py-team' AND tags.value = 'storage'", **JULY)
    check(storage.total_cost.amount == "50.5", f"storage {storage.total_cost.amount}")
    renamed = client.virtual_tag_configs.update(tag.token, UpdateVirtualTagConfig(key="py-owner"))
    check(renamed.key == "py-owner" and renamed.values[0].percentages[1].value == "data", f"{renamed}")
    expect_error(400, lambda: client.virtual_tag_configs.create(CreateVirtualTagConfig(key="bad", overridable=False, values=[
        VirtualTagConfigValue(filter="", percentages=[VirtualTagConfigValuePercentage(value="a", pct=60.0)])])),
        "add up to exactly 100")
    # The managed account sees its MSP's tag (its costs are its rules' shapes of the same rows).
    check(any(t.tag_key == "py-owner" for t in mine.tags.list(search_query="py-").tags), "managed sees the tag key")
    client.virtual_tag_configs.delete(tag.token)
    expect_error(404, lambda: client.virtual_tag_configs.get(tag.token))


def currencies(client):
    """Rates through client.exchange_rates; the workspace converting to EUR shows July's dollars at half."""
    client.exchange_rates.create_via_csv({"csv": "base_currency_code,currency_code,rate,date\nUSD,EUR,0.5,2024-01-01\n"})
    rates = client.exchange_rates.list().exchange_rates
    check(any((r.base_currency_code, r.currency_code, r.rate, r.effective_date) == ("USD", "EUR", "0.5", "2024-01-01")
              for r in rates), f"exchange rates {rates}")
    expect_error(400, lambda: client.exchange_rates.create_via_csv({"csv": "USD,EUR,abc,2024-01-02\n"}), "line 1: rate")
    check(len(client.exchange_rates.list().exchange_rates) == len(rates), "a bad file stores nothing")
    # The default workspace (which holds the July upload) shown in EUR, then back to USD without conversion.
    home = client.me.get().default_workspace_token
    plain = client.costs.list(workspace_token=home, groupings=["service"], **JULY)
    client.workspaces.update(home, UpdateWorkspace(currency="EUR", enable_currency_conversion=True))
    converted = client.costs.list(workspace_token=home, groupings=["service"], **JULY)
    client.workspaces.update(home, UpdateWorkspace(currency="USD", enable_currency_conversion=False))
    check(plain.costs and all(c.currency == "USD" for c in plain.costs), f"{plain.costs}")
    check(all(c.currency == "EUR" for c in converted.costs) and converted.total_cost.currency == "EUR", f"{converted}")
    check(sum(Decimal(c.amount) for c in converted.costs) == sum(Decimal(c.amount) for c in plain.costs) / 2,
          f"converted at 0.5: {converted.costs} from {plain.costs}")


def unit_economics(client):
    """Business metrics through client.business_metrics; the report's unit cost is its cost / the metric, exact."""
    report = client.cost_reports.create(CreateCostReport(
        title="S3 per request", filter="costs.service = 'S3'", start_date="2024-07-01", end_date="2024-07-31",
        previous_period_end_date="2024-06-30"))
    metric = client.business_metrics.create(CreateBusinessMetric(
        title="Requests",
        cost_report_tokens_with_metadata=[
            AttachedCostReportForBusinessMetric(cost_report_token=report.token, unit_scale="per_thousand")],
        values=[BusinessMetricValue(date="2024-07-07T00:00:00Z", amount="3000")]))
    check(metric.token.startswith("bsnss_mtrc_") and metric.import_type == "csv", f"{metric}")
    check([(a.cost_report_token, a.unit_scale) for a in metric.cost_report_tokens_with_metadata]
          == [(report.token, "per_thousand")], f"{metric}")
    client.business_metrics.update_values_csv(metric.token, {"csv": "date,amount,label\n2024-07-08,1000,web\n"})
    values = client.business_metrics.get_values(metric.token).values
    check([(v.date, v.amount, v.label) for v in values]
          == [("2024-07-08T00:00:00Z", "1000.0", "web"), ("2024-07-07T00:00:00Z", "3000.0", None)], f"{values}")
    expect_error(422, lambda: client.business_metrics.update_values_csv(metric.token, {"csv": "2024-07-09,many\n"}),
                 "line 1: amount")
    check(len(client.business_metrics.get_values(metric.token).values) == 2, "a bad file stores nothing")
    units = client.unit_costs.list(cost_report_token=report.token, date_bin="month").unit_costs
    cost = Decimal(client.costs.list(cost_report_token=report.token, date_bin="month").total_cost.amount)
    with localcontext() as exact:
        exact.prec = 80
        expected = (cost / (Decimal(4000) / 1000)).quantize(Decimal("1e-18"), rounding=ROUND_HALF_UP)
    check(len(units) == 1 and Decimal(units[0].unit_cost_amount) == expected, f"{units} for {cost}")
    check((units[0].business_metric_amount, units[0].scale, units[0].date) == ("4000.0", 1000.0, "2024-07-01"),
          f"{units}")
    # The same unit costs as a data export's file.
    import time
    location = client.unit_costs.create_export(CreateUnitCostsExport(cost_report_token=report.token, date_bin="month"))
    check(isinstance(location, str) and "/v2/data_exports/dta_xprt_" in location, f"unit costs export {location}")
    for _ in range(200):
        export = client.data_exports.get(location.rsplit("/", 1)[1])
        if export.status != "pending":
            break
        time.sleep(0.05)
    check(export.status == "completed" and export.export_type == "unit_costs", f"{export}")
    req = urllib.request.Request(export.manifest.files[0], headers={"Authorization": f"Bearer {os.environ['COSTD_TOKEN']}"})
    with urllib.request.urlopen(req) as r:
        lines = r.read().decode().splitlines()
    check(len(lines) == 2 and lines[1].startswith(f"2024-07-01,{metric.token},")
          and f",{units[0].unit_cost_amount},4000.0,1000," in lines[1], f"unit costs CSV {lines}")
    client.business_metrics.update(metric.token, UpdateBusinessMetric(title="API requests"))
    check(client.business_metrics.get(metric.token).title == "API requests", "update business metric")
    check(any(m.token == metric.token for m in client.business_metrics.list().business_metrics), "list metrics")
    client.business_metrics.delete(metric.token)
    expect_error(404, lambda: client.business_metrics.get(metric.token))
    client.cost_reports.delete(report.token)


def segments(client):
    """Segments through client.segments: a parent, a child and the unallocated rest, each a report; the
    child and the rest add up to the parent to the last place."""
    top = client.segments.create(CreateSegment(
        title="Python units", filter="costs.provider = 'custom_provider'", track_unallocated=True,
        report_settings=ReportSettings(include_credits=False)))
    check(top.token.startswith("fltr_sgmt_") and top.report_token.startswith("rprt_") and top.priority == 100, f"{top}")
    check(top.report_settings is not None and top.report_settings.include_tax is True, f"{top}")
    child = client.segments.create(CreateSegment(
        title="Python S3", parent_segment_token=top.token, priority=1, filter="costs.service = 'S3'"))
    check(child.parent_segment_token == top.token and child.workspace_token == top.workspace_token, f"{child}")
    listed = client.segments.list().segments
    rest = [s for s in listed if s.parent_segment_token == top.token and s.title == "Unallocated Costs"]
    check(len(rest) == 1 and rest[0].filter is None, f"{listed}")

    def total(segment):
        costs = client.costs.list(cost_report_token=segment.report_token, groupings=["service"], date_bin="month",
                                  **JULY).costs
        return sum((Decimal(c.amount) for c in costs), Decimal(0))

    whole, s3, other = total(top), total(child), total(rest[0])
    check(whole > 0 and s3 > 0 and s3 + other == whole, f"{s3} + {other} != {whole}")
    # vantage-python's UpdateSegment always sends track_unallocated (false unless set), as Vantage documents.
    top = client.segments.update(top.token, UpdateSegment(title="Python BUs", track_unallocated=True))
    check(top.title == "Python BUs" and top.track_unallocated, f"{top}")
    check(client.segments.get(child.token).title == "Python S3", "get segment")
    expect_error(400, lambda: client.segments.update(child.token, UpdateSegment(filter="costs.nope = 1")), "filter")
    expect_error(409, lambda: client.cost_reports.delete(child.report_token), "/v2/segments/")
    expect_error(409, lambda: client.segments.delete(top.token), child.token)
    client.segments.delete(child.token)
    client.segments.delete(top.token)
    expect_error(404, lambda: client.segments.get(top.token))


def tag_flags(client):
    """PUT /v2/tags hides a key (and shows it again); PUT /v2/me answers the caller as GET does."""
    keys = [t.tag_key for t in client.tags.list().tags]
    check(keys, "the uploads carry tags")
    updated = client.tags.update(UpdateTag(tag_key=keys[0], hidden=True)).tags
    check([(t.tag_key, t.hidden) for t in updated] == [(keys[0], True)], f"{updated} for {keys[0]!r}")
    check(any(t.tag_key == keys[0] and t.hidden for t in client.tags.list().tags), "the key is listed hidden")
    client.tags.update(UpdateTag(tag_key=keys[0], hidden=False))
    expect_error(404, lambda: client.tags.update(UpdateTag(tag_key="no such key", hidden=True)))
    me = client.me.update(UpdateMe())
    check(me.default_workspace_token == client.me.get().default_workspace_token, f"{me}")


def main():
    client = Client(os.environ["COSTD_TOKEN"], base_url=URL)

    # ping, me
    check(client.ping.ping() is None, "ping")
    me = client.me.get()
    check(me.default_workspace_token.startswith("wrkspc_"), f"me: {me}")
    check(sorted(me.bearer_token.scope) == ["read", "write"], f"scopes {me.bearer_token.scope}")

    # workspaces
    ws = client.workspaces.create(CreateWorkspace(name="Python WS"))
    check(ws.name == "Python WS" and ws.token.startswith("wrkspc_"), f"{ws}")
    check(client.workspaces.get(ws.token).token == ws.token, "get workspace")
    ws = client.workspaces.update(ws.token, UpdateWorkspace(name="Python WS 2"))
    check(ws.name == "Python WS 2", "update workspace")
    check(any(w.token == ws.token for w in client.workspaces.list().workspaces), "list workspaces")
    # vantage-python 0.5.0 has no workspaces.delete; its own raw request method sends the same call.
    client.request("DELETE", f"/v2/workspaces/{ws.token}")
    expect_error(404, lambda: client.workspaces.get(ws.token))

    # integrations and uploads
    small = client.integrations.create_custom_provider(CreateCustomProviderIntegration(name="Python small", description="d"))
    sample = client.integrations.create_custom_provider(CreateCustomProviderIntegration(name="Python sample"))
    check(small.provider == "custom_provider" and small.status == "imported", f"{small}")
    listed = client.integrations.list(provider="custom_provider").integrations
    check({small.token, sample.token} <= {i.token for i in listed}, "list integrations")
    check(client.integrations.get(small.token).account_identifier == "Python small", "get integration")
    updated = client.integrations.update(small.token, UpdateIntegration(workspace_tokens=[me.default_workspace_token]))
    check(updated.workspace_tokens == [me.default_workspace_token], f"{updated}")

    up = client.integrations.create_user_costs_upload_via_csv(small.token, {"csv": SMALL})
    check(up.amount == "160.5" and up.start_date == "2024-07-05", f"{up}")
    with open(SAMPLE, encoding="utf-8") as f:
        focus = client.integrations.create_user_costs_upload_via_csv(sample.token, {"csv": f.read(), "auto_transform": False})
    check(focus.amount == "20.52022672899", f"FOCUS sample: {focus.amount}")
    check(len(client.integrations.get_user_costs_uploads(small.token).user_costs_uploads) == 1, "list uploads")
    bad = expect_error(422, lambda: client.integrations.create_user_costs_upload_via_csv(
        small.token, {"csv": "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-07-0é,1,EC2\n"}), "Row 1")
    check("ChargePeriodStart" in bad.errors[0], f"{bad.errors}")

    # billing rules: every type, read, update, list, errors
    rules = [
        client.billing_rules.create(CreateBillingRule(type="exclusion", title="No tax", charge_type="Tax")),
        client.billing_rules.create(CreateBillingRule(type="adjustment", title="75%", percentage=75.0)),
        client.billing_rules.create(CreateBillingRule(
            type="custom", title="Double EU", sql_query="UPDATE costs SET amount = amount * 2 WHERE region = 'eu-west-1'")),
        client.billing_rules.create(CreateBillingRule(
            type="credit", title="Credit", service="Support", category="Credit", sub_category="Monthly", amount=10,
            start_date="2024-07-01")),
        client.billing_rules.create(CreateBillingRule(
            type="charge", title="Fee", service="MSP", category="Fee", sub_category="Monthly", amount=5,
            start_date="2024-07-01", end_date="2024-12-31")),
    ]
    check([r.type for r in rules] == ["Exclusion", "Adjustment", "Custom", "Credit", "Charge"], "rule types")
    check(rules[1].percentage == "75.0", f"percentage {rules[1].percentage}")
    check(client.billing_rules.get(rules[0].token).charge_type == "Tax", "get rule")
    renamed = client.billing_rules.update(rules[0].token, UpdateBillingRule(title="No tax at all"))
    check(renamed.title == "No tax at all", "update rule")
    check(len(client.billing_rules.list(limit=2).billing_rules) == 2, "list rules with a limit")
    expect_error(400, lambda: client.billing_rules.create(CreateBillingRule(
        type="custom", title="bad", sql_query="UPDATE costs SET accrued_at = 'not a date'")), "not a date")
    expect_error(400, lambda: client.billing_rules.create(CreateBillingRule(type="adjustment", title="no pct")), "percentage")

    # managed accounts
    managed = client.managed_accounts.create(CreateManagedAccount(
        name="Py Acme", contact_email="ops@acme.example", access_credential_tokens=[small.token],
        billing_rule_tokens=[r.token for r in rules]))
    check(managed.billing_rule_tokens == [r.token for r in rules], f"{managed}")
    check(client.managed_accounts.get(managed.token).access_credential_tokens == [small.token], "get managed")
    managed = client.managed_accounts.update(managed.token, UpdateManagedAccount(name="Py Acme Inc"))
    check(managed.name == "Py Acme Inc", "update managed")
    check(any(m.token == managed.token for m in client.managed_accounts.list().managed_accounts), "list managed")
    expect_error(400, lambda: client.managed_accounts.update(managed.token, UpdateManagedAccount(
        billing_rule_tokens=[rules[3].token, rules[0].token])), "order")

    # costs, raw for the parent: July 100 + 10 + 50.5; September is the FOCUS sample
    costs = client.costs.list(groupings=["service"], date_bin="month", order="asc", **JULY)
    check(costs.total_cost.amount == "160.5" and costs.total_cost.currency == "USD", f"{costs.total_cost}")
    check([(c.service, c.amount) for c in costs.costs] == [("EC2", "110.0"), ("S3", "50.5")], f"{costs.costs}")
    # The sample billed 20.52 (BilledCost); amortized (EffectiveCost, Vantage's default) it is 14.98.
    sept = client.costs.list(start_date="2024-09-01", end_date="2024-09-30", groupings=["provider"],
                             settings_include_credits=True, settings_amortize=False)
    check(sept.total_cost.amount == "20.52", f"sample total {sept.total_cost.amount}")
    amortized = client.costs.list(start_date="2024-09-01", end_date="2024-09-30", settings_include_credits=True)
    check(amortized.total_cost.amount == "14.98", f"amortized sample total {amortized.total_cost.amount}")
    usage = client.costs.list(groupings=["service"], settings_aggregate_by="usage", start_date="2024-09-01",
                              end_date="2024-09-30")
    check(usage.total_usage and all(u.unit for u in usage.total_usage), f"total_usage {usage.total_usage}")
    expect_error(400, lambda: client.costs.list(settings_unallocated=True, **JULY), "settings[unallocated]")
    paged = client.costs.list(groupings=["service", "region"], date_bin="day", limit=1, page=2, **JULY)
    check(len(paged.costs) == 1 and paged.links.prev and paged.links.next, f"{paged.links}")
    filtered = client.costs.list(filter="costs.service = 'EC2' AND costs.charge_type = 'Tax'", **JULY)
    check(filtered.total_cost.amount == "10.0", f"{filtered.total_cost}")
    expect_error(400, lambda: client.costs.list(filter="costs.owner = 'me'", **JULY), "unknown field")

    # costs as the managed account sees them: Tax excluded; 75%: EC2 75, S3 37.875; S3 doubled (eu-west-1)
    # 75.75; the July fee +5; the credit −10 only with credits shown.
    mine = Client(mint(managed.token, "read"), base_url=URL)
    seen = mine.costs.list(groupings=["service"], **JULY)
    check(seen.total_cost.amount == "155.75", f"managed total {seen.total_cost.amount}")
    with_credits = mine.costs.list(groupings=["service", "charge_type"], settings_include_credits=True, **JULY)
    check(with_credits.total_cost.amount == "145.75", f"{with_credits.total_cost.amount}")
    check(sorted((c.service, c.amount) for c in with_credits.costs if c.service in ("Support", "MSP"))
          == [("MSP", "5.0"), ("Support", "-10.0")], f"{with_credits.costs}")
    expect_error(403, lambda: mine.billing_rules.create(CreateBillingRule(type="exclusion", title="x", charge_type="Tax")))
    expect_error(404, lambda: mine.integrations.get(small.token))

    discovery(client)
    data_export(client)
    reports(client)
    report_date_shapes(client)
    invoicing(client, managed, mine)
    virtual_tags(client, mine)
    currencies(client)
    unit_economics(client)
    segments(client)
    tag_flags(client)

    # deletes: the upload's costs vanish at once; then everything goes
    client.integrations.delete_user_costs_upload(small.token, up.token)
    check(client.costs.list(**JULY).total_cost.amount == "0.0", "costs after deleting the upload")
    expect_error(404, lambda: client.integrations.delete_user_costs_upload(small.token, up.token))
    client.managed_accounts.delete(managed.token)
    for r in rules:
        client.billing_rules.delete(r.token)
    client.integrations.delete(small.token)
    client.integrations.delete(sample.token)
    expect_error(404, lambda: client.billing_rules.get(rules[0].token))
    # The audit log: each rule's delete is an entry of this token, its last title before and nothing after.
    # (The Node scenario, run first on the same server, deleted its own.)
    deleted = client.audit_logs.list(action="delete", object_type="billing_rule", limit=100).audit_logs
    check(
        {r.token for r in rules} <= {e.object_token for e in deleted}
        and all(e.event == "record_destroyed" and e.source == "api" for e in deleted),
        f"audit log of the deletes {deleted[:1]}",
    )
    entry = client.audit_logs.get(deleted[0].token)
    check(entry.token == deleted[0].token and entry.changed_values["title"][1] is None, f"one audit log {entry}")
    expect_error(401, lambda: Client("cstd_not_a_token", base_url=URL).me.get())
    version = importlib.metadata.version("vantage-python")
    print(f"python client (vantage-python {version}): {checks} checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"python client scenario FAILED: {e}", file=sys.stderr)
        sys.exit(1)
