//! What the two backends' SQL (`backend`, compiled once per backend) shares: the row types sqlx reads, with
//! their conversions into model entities, the column lists, and small helpers. One file per resource.

mod accounts;
mod audit_logs;
mod billing_profiles;
mod business_metrics;
mod exchange_rates;
mod exports;
mod integrations;
mod invoices;
mod managed_accounts;
mod notifications;
mod reports;
mod rules;
mod segments;
mod tokens;
mod uploads;
mod users;
mod virtual_tags;
mod workspaces;

pub(crate) use accounts::AccountRow;
pub(crate) use audit_logs::{AuditRow, AUDIT_COLUMNS};
pub(crate) use billing_profiles::{settings_json, ProfileRow, PROFILE_COLUMNS};
pub(crate) use business_metrics::{day, AttachmentRow, MetricRow, ValueRow, ATTACHMENT_COLUMNS, METRIC_COLUMNS};
pub(crate) use exports::{ExportRow, EXPORT_COLUMNS};
pub(crate) use integrations::{group_workspaces, IntegrationRow, SyncedPeriodRow};
pub(crate) use invoices::{document_json, status_in, InvoiceRow, INVOICE_COLUMNS};
pub(crate) use managed_accounts::{InvoicingDetails, ManagedRow, MANAGED_COLUMNS};
pub(crate) use notifications::{NotificationRow, NOTIFICATION_COLUMNS};
pub(crate) use reports::{ReportObjectRow, REPORT_OBJECT_COLUMNS};
pub(crate) use rules::RuleRow;
pub(crate) use segments::{settings_json as segment_settings_json, SegmentRow, SEGMENT_COLUMNS};
pub(crate) use tokens::{PrincipalRow, SessionRow, OWNER_JOIN, PRINCIPAL_COLUMNS};
pub(crate) use uploads::UploadRow;
pub(crate) use users::{UserRow, USER_COLUMNS};
pub(crate) use virtual_tags::{definition_json, VirtualTagRow, VIRTUAL_TAG_COLUMNS};
pub(crate) use workspaces::WorkspaceRow;

pub(crate) const INTEGRATION_COLUMNS: &str =
    "token, provider, name, description, status, last_updated, created_at, location, \
     last_synced_at, last_error";
pub(crate) const UPLOAD_COLUMNS: &str = "token, integration_token, filename, amount, currency, row_count, start_date, \
     end_date, import_status, created_by_token, created_at, rollup_decimals";

pub(crate) const ACCOUNT_COLUMNS: &str = "token, name, parent_account_token, owner_user_token, created_at";
pub(crate) const WORKSPACE_COLUMNS: &str =
    "token, name, enable_currency_conversion, currency, exchange_rate_date, created_at";
pub(crate) const RULE_COLUMNS: &str =
    "token, title, rule_type, rule_group, charge_type, percentage, service, category, \
     sub_category, amount, start_period, start_date, end_date, apply_to_all, sql_query, created_by_token, created_at";

/// Escapes `%`, `_` and `\` so a search term matches literally inside `LIKE … ESCAPE '\'`.
pub(crate) fn like_pattern(term: &str) -> String {
    let escaped = term.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}
pub(crate) use exchange_rates::{ExchangeRateRow, EXCHANGE_RATE_COLUMNS};
