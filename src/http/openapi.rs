//! `GET /v2/openapi.json`: costd's own OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations. The same annotations make the routes (utoipa-axum's `routes!`), so the document lists
//! exactly the operations costd serves; a test checks that each documented operation answers. Response
//! bodies are described field by field (`ToSchema` on each body type); request bodies are Vantage's
//! (`docs/clients.md` says what costd accepts beyond them).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// costd's OpenAPI document, built once from the routes.
#[utoipa::path(get, path = "/openapi.json", tag = "openapi", operation_id = "openapi_json", security(()), responses((status = 200, description = "This document", body = Object)))]
async fn openapi_json() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    static DOCUMENT: std::sync::LazyLock<utoipa::openapi::OpenApi> = std::sync::LazyLock::new(super::api_description);
    axum::Json(&DOCUMENT)
}
