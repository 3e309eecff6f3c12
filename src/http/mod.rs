//! The HTTP API: an axum application serving Vantage's API v2 under `/v2`.
//!
//! [`app`] builds the router (no I/O), [`serve`] runs it on a bound listener until `shutdown` resolves,
//! so tests bind port 0 and production binds the configured address. One module per resource owns its
//! routes; this module adds the layers: auth on every `/v2` route, a body limit, a trace span per request
//! (method, matched path, account) and the 500-cause logger inside that span.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::store::DynStore;

pub mod auth;
pub mod billing_profiles;
pub mod billing_rules;
pub mod console;
pub mod cost_reports;
pub mod costs;
pub mod data_exports;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod files;
pub mod folders;
pub mod form;
pub mod integrations;
pub mod invoices;
pub mod managed_accounts;
pub mod me;
pub mod openapi;
pub mod pagination;
pub mod ping;
pub mod saved_filters;
pub mod uploads;
pub mod workspaces;

pub use error::{ApiError, Result};

/// Largest JSON request body. Billing rules and workspaces are a few hundred bytes; a custom rule's SQL
/// is capped well below this.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Recently authenticated tokens (see [`auth::AuthCache`]).
    pub auth_cache: std::sync::Arc<auth::AuthCache>,
    /// The metadata store.
    pub store: DynStore,
    /// Upload files and their readers (see [`crate::engine::uploads::UploadFiles`]).
    pub files: std::sync::Arc<crate::engine::uploads::UploadFiles>,
    /// Results of recent costs queries (see [`crate::service::costs::ResultCache`]).
    pub costs_cache: std::sync::Arc<crate::service::costs::ResultCache>,
    /// Base of absolute URLs in `links`; `None` means `http://` + the request's Host.
    pub public_url: Option<String>,
    /// Most bytes of (decompressed) CSV one upload may hold; `None`: no limit.
    pub max_upload_bytes: Option<u64>,
    /// A costs query still running after this is stopped with a 503.
    pub query_timeout: std::time::Duration,
    /// Where invoices are emailed through; `None`: sending answers 400.
    pub mailer: Option<std::sync::Arc<crate::mail::Mailer>>,
    /// Signs download links; its key comes from the store on first use.
    pub signer: std::sync::Arc<tokio::sync::OnceCell<crate::service::signed::UrlSigner>>,
    /// How long a download link works.
    pub download_ttl: std::time::Duration,
    /// Today's date, which reports' date intervals resolve against (tests set their own).
    pub today: Today,
    /// Where cost data exports are written, and for how long they are kept.
    pub exports: crate::service::exports::ExportFiles,
}

/// A source of today's date.
pub type Today = std::sync::Arc<dyn Fn() -> chrono::NaiveDate + Send + Sync>;

impl AppState {
    /// State with the default auth cache (1 s), links built from the Host header, no upload limit and the
    /// default query time limit.
    pub fn new(store: DynStore, data_dir: &std::path::Path) -> Self {
        AppState {
            auth_cache: std::sync::Arc::new(auth::AuthCache::new(DEFAULT_AUTH_CACHE_TTL)),
            store,
            files: crate::engine::uploads::UploadFiles::new(data_dir),
            costs_cache: Default::default(),
            public_url: None,
            max_upload_bytes: None,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            mailer: None,
            signer: Default::default(),
            download_ttl: crate::service::signed::DEFAULT_TTL,
            today: std::sync::Arc::new(|| chrono::Utc::now().date_naive()),
            exports: crate::service::exports::ExportFiles::new(data_dir, crate::service::exports::DEFAULT_RETENTION),
        }
    }

    /// The download-link signer, its key read from (or first made in) the store.
    pub async fn signer(&self) -> anyhow::Result<&crate::service::signed::UrlSigner> {
        let store = self.store.clone();
        self.signer
            .get_or_try_init(|| async move {
                let key = store.server_secret(crate::service::signed::KEY_NAME).await?;
                Ok(crate::service::signed::UrlSigner::new(&key))
            })
            .await
    }

    /// What the costs service needs from this state.
    pub fn costs_context(&self) -> crate::service::costs::CostsContext {
        crate::service::costs::CostsContext {
            store: self.store.clone(),
            files: self.files.clone(),
            cache: self.costs_cache.clone(),
            timeout: self.query_timeout,
        }
    }
}

/// How long a costs query may run before it is stopped (and the floor of the janitor's grace period).
pub const DEFAULT_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// How long an authenticated token is trusted without asking the store again.
pub const DEFAULT_AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The whole application.
pub fn app(state: AppState) -> Router {
    let v2 = Router::new()
        .merge(ping::router())
        .merge(me::router())
        .merge(workspaces::router())
        .merge(billing_rules::router())
        .merge(integrations::router())
        .merge(uploads::router())
        .merge(managed_accounts::router())
        .merge(billing_profiles::router())
        .merge(invoices::router())
        .merge(costs::router())
        .merge(cost_reports::router())
        .merge(saved_filters::router())
        .merge(folders::router())
        .merge(discovery::router())
        .merge(data_exports::router())
        .route_layer(from_fn_with_state(state.clone(), auth::require_token))
        // Signed links carry their own authority, and the API's description is public: no API token.
        .merge(files::router())
        .merge(openapi::router());

    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let path = req.extensions().get::<MatchedPath>().map_or(req.uri().path(), |p| p.as_str());
            tracing::info_span!("request", method = %req.method(), path, account = tracing::field::Empty)
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));

    Router::new()
        .nest("/v2", v2)
        .merge(console::router())
        .fallback(|| async { ApiError::NotFound("no such path; the API lives under /v2".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(from_fn(error::log_internal_errors))
        .layer(trace)
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// A token from the path, of the kind the route names. Text that is no such token cannot name a resource
/// of the caller's: it is `not_found` without asking the store.
pub(crate) fn path_token<T>(
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
    not_found: impl FnOnce() -> ApiError,
) -> Result<T> {
    parse(text).ok_or_else(not_found)
}

/// Formats a timestamp as the API shows it: `2024-07-02T15:26:52Z`.
pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
