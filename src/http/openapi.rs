//! `GET /v2/openapi.json`: costd's own OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations, so it lists exactly the operations costd serves (a test checks both ways: every
//! documented operation answers, every route is documented). Field-level schemas are Vantage's
//! (`shared/vantage-openapi/swagger.json`); this document says which of its operations costd implements.

use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "costd",
        description = "A self-hostable cloud-cost engine with Vantage's API v2. Every operation but the signed \
                       invoice files and this document takes `Authorization: Bearer <token>`; GET needs the read \
                       scope, other methods write (asking for a download link or a data export reads)."
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    paths(
        openapi_json,
        super::billing_profiles::list,
        super::billing_profiles::create,
        super::billing_profiles::show,
        super::billing_profiles::update,
        super::billing_profiles::remove,
        super::billing_rules::list,
        super::billing_rules::create,
        super::billing_rules::show,
        super::billing_rules::update,
        super::billing_rules::remove,
        super::budgets::list,
        super::budgets::create,
        super::budgets::show,
        super::budgets::update,
        super::budgets::remove,
        super::budgets::list_alerts,
        super::budgets::create_alert,
        super::budgets::show_alert,
        super::budgets::update_alert,
        super::budgets::remove_alert,
        super::budgets::list_cost_alerts,
        super::budgets::create_cost_alert,
        super::budgets::show_cost_alert,
        super::budgets::update_cost_alert,
        super::budgets::remove_cost_alert,
        super::budgets::cost_alert_events,
        super::budgets::cost_alert_event,
        super::budgets::list_notifications,
        super::budgets::create_notification,
        super::budgets::show_notification,
        super::budgets::update_notification,
        super::budgets::remove_notification,
        super::budgets::list_anomaly_notifications,
        super::budgets::create_anomaly_notification,
        super::budgets::show_anomaly_notification,
        super::budgets::update_anomaly_notification,
        super::budgets::remove_anomaly_notification,
        super::budgets::list_anomaly_alerts,
        super::budgets::show_anomaly_alert,
        super::budgets::update_anomaly_alert,
        super::budgets::deliveries,
        super::budgets::signing_secret,
        super::cost_reports::list,
        super::cost_reports::create,
        super::cost_reports::show,
        super::cost_reports::update,
        super::cost_reports::remove,
        super::cost_reports::forecasted_costs,
        super::costs::costs_handler,
        super::data_exports::create,
        super::data_exports::show,
        super::data_exports::file,
        super::discovery::providers,
        super::discovery::services,
        super::discovery::tags,
        super::discovery::tag_values,
        super::files::serve,
        super::folders::list,
        super::folders::create,
        super::folders::show,
        super::folders::update,
        super::folders::remove,
        super::integrations::list,
        super::integrations::create_custom_provider,
        super::integrations::show,
        super::integrations::update,
        super::integrations::remove,
        super::integrations::create_aws,
        super::integrations::create_azure,
        super::integrations::create_gcp,
        super::integrations::sync_now,
        super::invoices::list,
        super::invoices::create,
        super::invoices::show,
        super::invoices::regenerate,
        super::invoices::download,
        super::invoices::cost_report,
        super::invoices::send,
        super::invoices::send_and_approve,
        super::managed_accounts::list,
        super::managed_accounts::create,
        super::managed_accounts::show,
        super::managed_accounts::update,
        super::managed_accounts::remove,
        super::me::me,
        super::ping::ping,
        super::saved_filters::list,
        super::saved_filters::create,
        super::saved_filters::show,
        super::saved_filters::update,
        super::saved_filters::remove,
        super::uploads::upload,
        super::uploads::list,
        super::uploads::remove,
        super::users::list,
        super::users::show,
        super::workspaces::list,
        super::workspaces::create,
        super::workspaces::show,
        super::workspaces::update,
        super::workspaces::remove
    )
)]
pub struct ApiDoc;

/// The errors every authenticated operation may answer, in Vantage's `{"errors": [...]}` shape.
#[derive(utoipa::IntoResponses)]
pub enum ApiErrors {
    /// Bad input: each problem named.
    #[response(status = 400)]
    BadRequest,
    /// No token, or an unknown or revoked one.
    #[response(status = 401)]
    Unauthorized,
    /// The token lacks the scope.
    #[response(status = 403)]
    Forbidden,
    /// Not this account's, or no such resource.
    #[response(status = 404)]
    NotFound,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, served without a token.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// costd's OpenAPI document.
#[utoipa::path(get, path = "/v2/openapi.json", tag = "openapi", operation_id = "openapi_json", security(()), responses((status = 200, description = "This document")))]
async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
