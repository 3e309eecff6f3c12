//! The HTTP API: an axum application serving Vantage's API v2 under `/v2`.
//!
//! [`app`] builds the router (no I/O), [`serve`] runs it on a bound listener until `shutdown` resolves,
//! so tests bind port 0 and production binds the configured address. One module per resource owns its
//! routes; this module adds the layers: auth on every `/v2` route and, inside it, the audit log's
//! (`audit_logs::record_writes`), a body limit, a trace span per request (method, matched path, account)
//! and the 500-cause logger inside that span.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;

use crate::store::DynStore;

pub mod alert_deliveries;
pub mod anomaly_alerts;
pub mod anomaly_notifications;
pub mod audit_logs;
pub mod auth;
pub mod billing_profiles;
pub mod billing_rules;
pub mod budget_alerts;
pub mod budgets;
pub mod business_metrics;
pub mod console;
pub mod cost_alerts;
pub mod cost_reports;
pub mod costs;
pub mod data_exports;
pub mod discovery;
pub mod drain;
pub mod error;
pub mod exchange_rates;
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
pub mod report_notifications;
pub mod saved_filters;
pub mod segments;
pub mod unit_costs;
pub mod uploads;
pub mod users;
pub mod virtual_tag_configs;
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
    /// Upload files and their readers (see [`crate::service::files::UploadFiles`]).
    pub files: std::sync::Arc<crate::service::files::UploadFiles>,
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
    /// How long a download link works.
    pub download_ttl: std::time::Duration,
    /// Today's date, which reports' date intervals resolve against (tests set their own).
    pub today: Today,
    /// Where cost data exports are written, and for how long they are kept.
    pub exports: crate::service::exports::ExportFiles,
    /// How many costs queries each account may run at once.
    pub query_slots: std::sync::Arc<crate::service::costs::QuerySlots>,
    /// How many uploads each account, and the node, may have in flight.
    pub upload_slots: std::sync::Arc<crate::service::slots::UploadSlots>,
    /// A request body that sends nothing for this long is cut off (its request fails).
    pub body_idle_timeout: std::time::Duration,
    /// Endpoints bucket integrations may name besides AWS's and Azure's (`--allow-endpoint`).
    pub allowed_endpoints: crate::model::bucket_export::AllowedEndpoints,
    /// The key bucket integrations' credentials are sealed with.
    pub secrets: crate::service::secrets::SecretBox,
    /// Bucket integrations this process is syncing.
    pub running_syncs: crate::service::sync::RunningSyncs,
    /// How many syncs each account, and the node, may run at once.
    pub sync_slots: std::sync::Arc<crate::service::sync::SyncSlots>,
    /// How alerts' webhooks are called (`--allow-webhook-host`, time-out).
    pub webhooks: crate::service::webhooks::WebhookClient,
    /// The first retry of a failed alert delivery waits this long (doubling, at most an hour).
    pub alert_retry_base: std::time::Duration,
    /// Attempts before an alert delivery is failed.
    pub alert_max_attempts: i32,
    /// Alert messages one account may send an hour from this node (more wait their turn).
    pub alert_messages_per_hour: usize,
    /// When this node sent each account's recent alert messages.
    pub alert_sent: crate::service::alerts::SentLog,
    /// Wakes the alerts' worker: `evaluate` after an upload committed, `deliver` after messages were written.
    pub alert_wake: AlertWake,
}

/// The alerts' worker's wake-ups (see [`crate::service::alerts`]).
#[derive(Clone, Default)]
pub struct AlertWake {
    pub evaluate: std::sync::Arc<tokio::sync::Notify>,
    pub deliver: std::sync::Arc<tokio::sync::Notify>,
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
            files: crate::service::files::UploadFiles::new(data_dir),
            costs_cache: Default::default(),
            public_url: None,
            max_upload_bytes: None,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            mailer: None,
            download_ttl: crate::service::signed::DEFAULT_TTL,
            today: std::sync::Arc::new(|| chrono::Utc::now().date_naive()),
            exports: crate::service::exports::ExportFiles::new(data_dir, crate::service::exports::DEFAULT_RETENTION),
            query_slots: Default::default(),
            upload_slots: Default::default(),
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            allowed_endpoints: Default::default(),
            // A key of this process only: `serve` sets the configured one.
            secrets: crate::service::secrets::SecretBox::new(rand::random()),
            running_syncs: Default::default(),
            sync_slots: crate::service::sync::default_sync_slots(),
            webhooks: crate::service::webhooks::WebhookClient::new(Vec::new(), DEFAULT_WEBHOOK_TIMEOUT),
            alert_retry_base: std::time::Duration::from_secs(30),
            alert_max_attempts: 12,
            alert_messages_per_hour: crate::service::alerts::MESSAGES_PER_HOUR,
            alert_sent: Default::default(),
            alert_wake: Default::default(),
        }
    }

    /// What the alerts service needs from this state.
    pub fn alert_context(&self) -> crate::service::alerts::AlertContext {
        crate::service::alerts::AlertContext {
            costs: self.costs_context(),
            webhooks: self.webhooks.clone(),
            mailer: self.mailer.clone(),
            public_url: self.public_url.clone(),
            retry_base: self.alert_retry_base,
            max_attempts: self.alert_max_attempts,
            messages_per_hour: self.alert_messages_per_hour,
            sent: self.alert_sent.clone(),
            evaluate: self.alert_wake.evaluate.clone(),
            deliver: self.alert_wake.deliver.clone(),
            today: self.today.clone(),
        }
    }

    /// What the sync service needs from this state.
    pub fn sync_context(&self) -> crate::service::sync::SyncContext {
        crate::service::sync::SyncContext {
            store: self.store.clone(),
            files: self.files.clone(),
            secrets: self.secrets.clone(),
            allowed: self.allowed_endpoints.clone(),
            running: self.running_syncs.clone(),
            loaded: self.alert_wake.evaluate.clone(),
            slots: self.sync_slots.clone(),
            max_bytes: self.max_upload_bytes,
        }
    }

    /// The download-link signer, its key read from (or first made in) the store. Read on every use (a
    /// download or a new link: rare, and one small read), so `costd links revoke` reaches every node at once.
    pub async fn signer(&self) -> anyhow::Result<crate::service::signed::UrlSigner> {
        let key = self.store.server_secret(crate::service::signed::KEY_NAME).await?;
        Ok(crate::service::signed::UrlSigner::new(&key))
    }

    /// What the costs service needs from this state.
    pub fn costs_context(&self) -> crate::service::costs::CostsContext {
        crate::service::costs::CostsContext {
            store: self.store.clone(),
            files: self.files.clone(),
            cache: self.costs_cache.clone(),
            timeout: self.query_timeout,
            slots: self.query_slots.clone(),
        }
    }
}

/// How long one webhook call may take.
pub const DEFAULT_WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a costs query may run before it is stopped (and the floor of the janitor's grace period).
pub const DEFAULT_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// How long a request body may send nothing before it is cut off: a stalled upload would otherwise hold a
/// connection, a slot and a blocking thread for ever.
pub const DEFAULT_BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a client may take to send a request's headers (and an idle keep-alive connection may wait for
/// its next request): a connection that sends nothing does not keep a file descriptor for ever.
pub const DEFAULT_HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an authenticated token is trusted without asking the store again.
pub const DEFAULT_AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The `/v2` operations that take an API token. Each module's `router()` registers its handlers with their
/// `#[utoipa::path]` (`routes!`), so a route is written once and is documented by construction.
fn authenticated() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ping::router())
        .merge(me::router())
        .merge(users::router())
        .merge(workspaces::router())
        .merge(billing_rules::router())
        .merge(integrations::router())
        .merge(uploads::router())
        .merge(managed_accounts::router())
        .merge(billing_profiles::router())
        .merge(invoices::router())
        .merge(costs::router())
        .merge(cost_reports::router())
        .merge(budgets::router())
        .merge(budget_alerts::router())
        .merge(cost_alerts::router())
        .merge(report_notifications::router())
        .merge(anomaly_notifications::router())
        .merge(anomaly_alerts::router())
        .merge(alert_deliveries::router())
        .merge(saved_filters::router())
        .merge(folders::router())
        .merge(discovery::router())
        .merge(data_exports::router())
        .merge(virtual_tag_configs::router())
        .merge(exchange_rates::router())
        .merge(business_metrics::router())
        .merge(segments::router())
        .merge(unit_costs::router())
        .merge(audit_logs::router())
}

/// The `/v2` operations without an API token: signed invoice files and the OpenAPI document.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(files::router()).merge(openapi::router())
}

/// Every `/v2` operation with its OpenAPI description, under `/v2`: what `GET /v2/openapi.json` serves.
pub fn api_description() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).nest("/v2", authenticated().merge(public())).into_openapi()
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    // Every write recorded once the caller is known (inside auth); objects read through the handlers alone.
    let reader = authenticated().split_for_parts().0.with_state(state.clone());
    let audit = audit_logs::AuditLayer { state: state.clone(), reader };
    let authenticated = authenticated()
        .route_layer(from_fn_with_state(audit, audit_logs::record_writes))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    // Signed links carry their own authority, and the API's description is public: no API token.
    let (v2, _) = authenticated.merge(public()).split_for_parts();

    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let path = req.extensions().get::<MatchedPath>().map_or(req.uri().path(), |p| p.as_str());
            tracing::info_span!("request", method = %req.method(), path, account = tracing::field::Empty)
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));

    let body_idle_timeout = state.body_idle_timeout;
    Router::new()
        .nest("/v2", v2)
        .merge(console::router())
        .fallback(|| async { ApiError::NotFound("no such path; the API lives under /v2".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_idle_timeout))
        .layer(from_fn(error::log_internal_errors))
        // Outside every handler and the auth layer: an error answered before the body was read waits
        // until the client has finished sending it (bounded), so the client reads the status.
        .layer(from_fn(drain::unread_body))
        .layer(trace)
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, ConnectionLimits::default()).await
}

/// What one node allows its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A connection with no request in flight that has not completed a request head for this long (since it
    /// opened, or since its last response ended) is closed, on HTTP/1 and HTTP/2 alike.
    pub header_read_timeout: std::time::Duration,
    /// Connections held at once; past it new ones wait in the listen queue while those in use keep working.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: default_max_connections(),
        }
    }
}

/// Connections a node holds by default: its open-file limit less room for the store, the upload files and
/// the sync downloads (a quarter, and at least 64 descriptors), and at least 16.
pub fn default_max_connections() -> usize {
    // Linux says it in /proc (no unsafe call needed); elsewhere the common default of 1,024 is assumed.
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
            Some(if soft == "unlimited" { usize::MAX } else { soft.parse().ok()? })
        })
        .unwrap_or(1024);
    let soft = soft.min(1 << 20);
    soft.saturating_sub((soft / 4).max(64)).max(16)
}

/// [`serve`] under `limits`. `axum::serve` has neither bound: 1,100 connections that sent nothing (or only
/// HTTP/2's preface, which waits on no header time-out) kept every file descriptor of a server with a limit
/// of 1,024, and then not even a ping was answered.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut connections = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    connections.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    connections.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let pressure = std::sync::Arc::new(tokio::sync::Notify::new());
    tokio::pin!(shutdown);
    loop {
        // A free slot first: past the bound, connections wait in the listen queue, not in costd, and every
        // connection that has had no request in flight for a moment is asked to close (so connections that
        // say nothing give way to ones with a request, instead of holding every slot for the time-out).
        let slot = loop {
            tokio::select! {
                slot = slots.clone().acquire_owned() => break Some(slot.expect("never closed")),
                () = tokio::time::sleep(std::time::Duration::from_millis(200)) => pressure.notify_waiters(),
                () = &mut shutdown => break None,
            }
        };
        let Some(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection gone before it was accepted: the listener
                    // itself is fine, so wait a moment (as axum::serve does) and go on.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let activity = connection::Activity::new();
        let service = connection::tracked(app.clone(), activity.clone());
        let connection = connections.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        let timeout = limits.header_read_timeout;
        let pressure = pressure.clone();
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!(error = %e, "a connection ended with an error");
                },
                () = activity.idle_for(timeout, &pressure) => tracing::debug!("closed a connection that sent no request in time"),
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

pub mod connection {
    //! What a connection is doing, for [`super::serve_with`]'s watchdog: requests in flight (from a complete
    //! head until the response body ends or is dropped) and when the last one ended.

    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::body::Body;
    use axum::Router;
    use tokio::time::Instant;

    /// One connection's requests.
    pub struct Activity {
        opened: Instant,
        in_flight: AtomicUsize,
        /// Milliseconds after `opened` when the last request ended (0: none yet).
        last_ended_ms: AtomicU64,
    }

    impl Activity {
        pub fn new() -> Arc<Activity> {
            Arc::new(Activity {
                opened: Instant::now(),
                in_flight: AtomicUsize::new(0),
                last_ended_ms: AtomicU64::new(0),
            })
        }

        fn begin(self: &Arc<Self>) -> InFlight {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            InFlight(self.clone())
        }

        /// Resolves once the connection has had no request in flight for `timeout` since it opened or since
        /// its last request ended, or for [`UNDER_PRESSURE`] when the node is out of connection slots and
        /// `pressure` is signalled.
        pub async fn idle_for(&self, timeout: Duration, pressure: &tokio::sync::Notify) {
            loop {
                let since = self.opened + Duration::from_millis(self.last_ended_ms.load(Ordering::SeqCst));
                let deadline = since + timeout;
                if Instant::now() >= deadline {
                    if self.idle_since(since) {
                        return;
                    }
                    // Busy, or a request ended meanwhile: look again a little later.
                    tokio::time::sleep(timeout.min(Duration::from_secs(1))).await;
                    continue;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = pressure.notified() => {
                        if Instant::now() >= since + UNDER_PRESSURE && self.idle_since(since) {
                            return;
                        }
                    }
                }
            }
        }

        /// No request in flight, and none ended since `since`.
        fn idle_since(&self, since: Instant) -> bool {
            self.in_flight.load(Ordering::SeqCst) == 0
                && self.opened + Duration::from_millis(self.last_ended_ms.load(Ordering::SeqCst)) == since
        }
    }

    /// How long a connection may sit without a request while others wait for a slot.
    pub const UNDER_PRESSURE: Duration = Duration::from_secs(1);

    /// A request of the connection, from its head until its response body is done.
    struct InFlight(Arc<Activity>);

    impl Drop for InFlight {
        fn drop(&mut self) {
            let ended = self.0.opened.elapsed().as_millis().max(1);
            self.0.last_ended_ms.store(u64::try_from(ended).unwrap_or(u64::MAX), Ordering::SeqCst);
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A response body that keeps its request in flight until it is done or dropped.
    struct Tracked {
        body: Body,
        _request: InFlight,
    }

    impl http_body::Body for Tracked {
        type Data = axum::body::Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            Pin::new(&mut self.body).poll_frame(cx)
        }

        fn is_end_stream(&self) -> bool {
            self.body.is_end_stream()
        }

        fn size_hint(&self) -> http_body::SizeHint {
            self.body.size_hint()
        }
    }

    /// `app` as one connection's service, telling `activity` about each request.
    #[derive(Clone)]
    pub struct TrackedService {
        app: Router,
        activity: Arc<Activity>,
    }

    /// `app` serving one connection whose requests `activity` follows.
    pub fn tracked(app: Router, activity: Arc<Activity>) -> TrackedService {
        TrackedService { app, activity }
    }

    impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for TrackedService {
        type Response = hyper::Response<Body>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
            let request_in_flight = self.activity.begin();
            let app = self.app.clone();
            Box::pin(async move {
                use tower::ServiceExt;
                let response = app.oneshot(request.map(Body::new)).await?;
                Ok(response.map(|body| Body::new(Tracked { body, _request: request_in_flight })))
            })
        }
    }
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
