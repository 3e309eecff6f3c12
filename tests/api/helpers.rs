//! `TestApp`: a costd server on a port-0 listener over its own temp data dir (and, for PostgreSQL, its
//! own schema), with an account, a read/write token and typed request helpers.

use std::sync::atomic::{AtomicU32, Ordering};

use costd::bootstrap::mint_token;
use costd::http::AppState;
use costd::model::token::Scopes;
use costd::store::StoreSettings;
use costd::store::{Account, DynStore};
use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// Which metadata store a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` once per backend, as `<name>::on_sqlite` and `<name>::on_postgres`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn on_sqlite() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
                    super::$name(app).await;
                }

                #[tokio::test]
                async fn on_postgres() {
                    if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_stores;

/// A response as a client sees it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// A response read whole: its status, its text, and the text as JSON (null when empty or not JSON).
    async fn read(res: reqwest::Response) -> Resp {
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    /// The `errors` array of an error body, asserting the body has Vantage's shape.
    pub fn errors(&self) -> Vec<String> {
        let errors = self
            .body
            .get("errors")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("expected {{\"errors\": [...]}}, got {} {}", self.status, self.text));
        errors.iter().map(|e| e.as_str().expect("errors are strings").to_string()).collect()
    }

    /// All errors joined, for `contains` checks.
    pub fn error_text(&self) -> String {
        self.errors().join(" | ")
    }
}

/// A running costd and what a test needs to talk to it.
pub struct TestApp {
    pub base_url: String,
    /// Which metadata store it runs on.
    pub backend: Backend,
    pub store: DynStore,
    pub account: Account,
    /// A read/write token of `account`.
    pub token: String,
    pub client: reqwest::Client,
    /// The server's upload files (shared with it, so tests can run the janitor as the server would).
    pub files: std::sync::Arc<costd::engine::uploads::UploadFiles>,
    _data_dir: TempDir,
    _shutdown: oneshot::Sender<()>,
}

static SCHEMA_SEQ: AtomicU32 = AtomicU32::new(0);

/// PostgreSQL for tests: `COSTD_TEST_DATABASE_URL`, or the local server this project's machines run.
fn postgres_url() -> String {
    std::env::var("COSTD_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema for one test; `None` (with a message) when PostgreSQL is unreachable outside CI.
pub async fn postgres_schema_url() -> Option<String> {
    use sqlx::Connection;
    let base = postgres_url();
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_err() => {
            eprintln!("SKIPPED the PostgreSQL half of this test: cannot reach {base}: {e}");
            return None;
        }
        Err(e) => panic!("CI must run the PostgreSQL tests, but {base} is unreachable: {e}"),
    };
    SWEPT.get_or_init(|| sweep_dead_schemas(&base)).await;
    let schema =
        format!("costd_test_{}_{}_{}", std::process::id(), SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed), rand_suffix());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create test schema");
    let _ = conn.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Drops the schemas earlier test processes left (`costd_test_<pid>_…` of a process no longer running),
/// once per process: a test's schema outlives it (its server may still be closing), so the next run clears
/// it, and the test database stays as small as one run makes it.
async fn sweep_dead_schemas(base: &str) {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(base).await else { return };
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'costd\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    if !std::path::Path::new("/proc/self").exists() {
        return; // no way to tell a live process here: leave every schema
    }
    let alive = |pid: &str| std::path::Path::new("/proc").join(pid).exists();
    let dead = schemas.iter().filter(|s| s.split('_').nth(2).is_some_and(|pid| !alive(pid)));
    for schema in dead {
        // Another process may be sweeping the same schema: whatever it dropped is gone either way.
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await;
    }
    let _ = conn.close().await;
}

fn rand_suffix() -> String {
    costd::model::token::new_token("")[..8].to_string()
}

impl TestApp {
    /// Starts costd on `backend`; `None` when that backend cannot run here (PostgreSQL outside CI).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with the server's state changed by `configure` (limits, time-outs).
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut AppState)) -> Option<TestApp> {
        Self::spawn_on(backend, None, configure).await
    }

    /// Like [`TestApp::spawn_with`], with upload files in the storage `storage` names (a bucket).
    pub async fn spawn_on(
        backend: Backend,
        storage: Option<&costd::config::StorageSettings>,
        configure: impl FnOnce(&mut AppState),
    ) -> Option<TestApp> {
        // 500s log their cause; a failing test shows it.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("costd=error,costd_engine=error,costd_store=error")
            .try_init();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_schema_url().await?),
        };
        // The configuration `costd serve` runs with, but for the places and two workers: the alerts' and
        // the syncs' passes are run by the tests that need them (a pass of the server's own would take
        // the lock the test's pass needs). The janitor and the exports' sweeper run as in production.
        let config = costd::app::Config {
            store: StoreSettings { data_dir: data_dir.path().to_path_buf(), database_url, db_max_connections: 4 },
            storage: storage.cloned().unwrap_or_default(),
            integrations: Default::default(),
            serve: costd::config::ServeSettings {
                alert_interval_secs: 0,
                sync_interval_secs: 0,
                ..costd::config::ServeSettings::defaults()
            },
        };
        let mut built = costd::app::App::build(&config).await.expect("the app builds");
        let store = built.state.store.clone();
        let account = store.create_account("Test account", None).await.expect("account");
        let token = mint_token(store.as_ref(), &account, Scopes::READ_WRITE, "test token").await.unwrap().secret;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        configure(&mut built.state);
        let files = built.state.files.clone();
        tokio::spawn(built.run(listener, async {
            let _ = rx.await;
        }));
        Some(TestApp {
            base_url,
            backend,
            store,
            account,
            token,
            client: reqwest::Client::new(),
            files,
            _data_dir: data_dir,
            _shutdown: tx,
        })
    }

    /// One janitor pass with no grace period (this process is the only reader): what it removed.
    /// The server's own janitor runs beside the test and may hold the janitor lock for a moment (a pass
    /// that finds it taken does only its node's part): retried until this pass holds it.
    pub async fn collect_files(&self) -> costd::service::files::Collected {
        for _ in 0..200 {
            let collected = costd::service::files::collect(self.store.as_ref(), &self.files, std::time::Duration::ZERO)
                .await
                .unwrap();
            if collected.shared {
                return collected;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the janitor lock stayed taken for 5 s");
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._data_dir.path().to_path_buf()
    }

    /// Another top-level account and a read/write token for it.
    pub async fn other_account(&self) -> (Account, String) {
        let account = self.store.create_account("Other account", None).await.unwrap();
        let token = self.mint(&account, "read,write").await;
        (account, token)
    }

    /// A new token of `account` with `scopes` (`read`, `write`, `read,write`).
    pub async fn mint(&self, account: &Account, scopes: &str) -> String {
        mint_token(self.store.as_ref(), account, scopes.parse().unwrap(), "minted in a test").await.unwrap().secret
    }

    /// Creates a managed account of the app's account, asserting 201; returns it as the API showed it.
    pub async fn create_managed_account(&self, body: Value) -> Value {
        let res = self.post("/v2/managed_accounts", body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    /// A new token with `scopes` for the account whose token is `account_token` (e.g. a managed account).
    pub async fn mint_for(&self, account_token: &str, scopes: &str) -> String {
        let account = self.store.get_account(&account_token.into()).await.unwrap().expect("the account exists");
        self.mint(&account, scopes).await
    }

    /// Sends a request with `token` (none when `None`) and an optional raw body.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<String>) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        Resp::read(req.send().await.expect("request is sent")).await
    }

    /// POSTs `form` (multipart) to `path` with `token`: how the uploads and rates tests send a file.
    pub async fn post_form(&self, path: &str, token: &str, form: reqwest::multipart::Form) -> Resp {
        self.send_form(Method::POST, path, token, form).await
    }

    /// Sends `fields` as a form-urlencoded body to `path` with `token`: how vantage-python sends a file
    /// (httpx `data={"csv": …}`).
    pub async fn send_urlencoded(&self, method: Method, path: &str, token: &str, fields: &[(&str, &str)]) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let res = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Resp::read(res).await
    }

    /// Sends `form` (multipart) to `path` with `token` (a `PUT` of metric values, a `POST` of a file).
    pub async fn send_form(&self, method: Method, path: &str, token: &str, form: reqwest::multipart::Form) -> Resp {
        let res = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        Resp::read(res).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.token), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&self.token), Some(body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(&self.token), Some(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.token), None).await
    }

    /// Creates a billing rule, asserting 201; returns the rule as the API showed it.
    pub async fn create_rule(&self, body: Value) -> Value {
        let res = self.post("/v2/billing_rules", body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }
}
