//! Nothing acknowledged is lost, whatever the timing: two nodes share one store and one bucket, and the
//! janitor of one runs while the other's upload sits between its PUT and its commit (the bucket answers the
//! PUT only when the test lets it). Also: a writer that stopped has its files cleared once its lease ends,
//! and a commit after that records nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tokio::sync::{mpsc, Mutex};

use costd::engine::storage::Storage;
use costd::engine::uploads::UploadFiles;
use costd::service::files::collect;
use costd::store::FileIntent;

use crate::helpers::{on_both_stores, Backend, TestApp};
use crate::uploads::csv;

/// An in-memory bucket whose PUT of an upload file (not a rollup) completes — the object is there for
/// everyone — and then waits for the test before it answers its writer: a slow link, frozen at the worst
/// moment.
#[derive(Debug)]
struct PausedAfterPut {
    inner: Arc<InMemory>,
    /// Told the key each time an upload file's PUT has completed.
    stored: mpsc::UnboundedSender<String>,
    /// The writer waits here for the test's go.
    go: Mutex<mpsc::UnboundedReceiver<()>>,
}

impl fmt::Display for PausedAfterPut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PausedAfterPut({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for PausedAfterPut {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let done = self.inner.put_opts(location, payload, opts).await?;
        let key = location.to_string();
        if key.ends_with(".parquet") && !key.contains(".rollup") {
            let _ = self.stored.send(key);
            self.go.lock().await.recv().await;
        }
        Ok(done)
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn bucket(store: Arc<dyn ObjectStore>) -> Storage {
    Storage::Object {
        store,
        url: datafusion::execution::object_store::ObjectStoreUrl::parse("s3://intents").unwrap(),
        prefix: Path::from("prod/uploads"),
    }
}

/// Node A (a served `TestApp`) writes through the pausing bucket; node B is a second set of upload files
/// on the same bucket and store, whose janitor the test runs by hand.
struct TwoNodes {
    a: TestApp,
    b: Arc<UploadFiles>,
    inner: Arc<InMemory>,
    stored: mpsc::UnboundedReceiver<String>,
    go: mpsc::UnboundedSender<()>,
    _spool_b: tempfile::TempDir,
}

async fn two_nodes(backend: Backend) -> Option<TwoNodes> {
    let inner = Arc::new(InMemory::new());
    let (stored_tx, stored) = mpsc::unbounded_channel();
    let (go, go_rx) = mpsc::unbounded_channel();
    let paused = Arc::new(PausedAfterPut { inner: inner.clone(), stored: stored_tx, go: Mutex::new(go_rx) });
    let a = TestApp::spawn_with(backend, |state| {
        state.files = UploadFiles::with_storage(state.files.spool().to_path_buf(), bucket(paused));
    })
    .await?;
    let spool_b = tempfile::tempdir().unwrap();
    let b = UploadFiles::with_storage(spool_b.path().to_path_buf(), bucket(inner.clone()));
    Some(TwoNodes { a, b, inner, stored, go, _spool_b: spool_b })
}

const COSTS: &str = "/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service&date_bin=month";

async fn keys(store: &InMemory) -> Vec<String> {
    use futures::TryStreamExt;
    let mut keys: Vec<String> = store.list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn another_nodes_janitor_between_put_and_commit_takes_nothing_on_sqlite() {
    another_nodes_janitor_between_put_and_commit_takes_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn another_nodes_janitor_between_put_and_commit_takes_nothing_on_postgres() {
    another_nodes_janitor_between_put_and_commit_takes_nothing(Backend::Postgres).await;
}

async fn another_nodes_janitor_between_put_and_commit_takes_nothing(backend: Backend) {
    let Some(mut nodes) = two_nodes(backend).await else { return };
    let integration = nodes.a.create_integration("Slow link").await["token"].as_str().unwrap().to_string();
    let a = Arc::new(nodes.a);

    let upload = tokio::spawn({
        let (a, integration) = (a.clone(), integration.clone());
        async move { a.upload(&integration, "costs.csv", csv(8).into_bytes()).await }
    });
    let key = tokio::time::timeout(Duration::from_secs(30), nodes.stored.recv()).await.unwrap().unwrap();
    // B's janitor with no grace at all: the object is in the bucket, no upload row names it yet, and it is
    // not pinned on B. Only A's intent says it is about to be committed.
    let collected = collect(a.store.as_ref(), &nodes.b, Duration::ZERO).await.unwrap();
    assert_eq!((collected.orphans, collected.abandoned), (0, 0), "{collected:?}");
    assert!(keys(&nodes.inner).await.contains(&key), "the janitor took {key} before its commit");

    nodes.go.send(()).unwrap();
    let res = upload.await.unwrap();
    assert_eq!(res.status, 201, "{}", res.text);
    let res = a.get(COSTS).await;
    assert_eq!(res.status, 200, "an acknowledged upload is readable: {}", res.text);
    assert_eq!(res.body["total_cost"]["amount"], "10.0");
    // Committed, the intent is gone, and the next passes on either node keep the file.
    assert!(a.store.file_intents().await.unwrap().is_empty());
    collect(a.store.as_ref(), &nodes.b, Duration::ZERO).await.unwrap();
    collect(a.store.as_ref(), &a.files, Duration::ZERO).await.unwrap();
    assert_eq!(a.get(COSTS).await.body["total_cost"]["amount"], "10.0");
}

#[tokio::test]
async fn a_file_removed_before_its_commit_fails_the_upload_instead_of_acknowledging_it() {
    let Some(mut nodes) = two_nodes(Backend::Sqlite).await else { return };
    let integration = nodes.a.create_integration("Lost").await["token"].as_str().unwrap().to_string();
    let a = Arc::new(nodes.a);
    let upload = tokio::spawn({
        let (a, integration) = (a.clone(), integration.clone());
        async move { a.upload(&integration, "costs.csv", csv(4).into_bytes()).await }
    });
    let key = nodes.stored.recv().await.unwrap();
    // Behind costd's back (an operator's lifecycle rule, a mistaken script).
    nodes.inner.delete(&Path::from(key)).await.unwrap();
    nodes.go.send(()).unwrap();
    let res = upload.await.unwrap();
    assert_eq!(res.status, 500, "{}", res.text);
    let listed = a.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(listed.body["user_costs_uploads"].as_array().unwrap().len(), 0, "{}", listed.text);
    assert_eq!(a.get(COSTS).await.status, 200);
    assert!(keys(&nodes.inner).await.is_empty(), "what it wrote went with it: {:?}", keys(&nodes.inner).await);
    assert!(a.store.file_intents().await.unwrap().is_empty());
}

on_both_stores!(
    a_writer_that_stopped_has_its_files_cleared_when_its_lease_ends_and_cannot_commit_after,
    a_live_intent_keeps_its_files_from_every_janitor_however_old_they_are,
);

fn intent(token: &str, lease_until_ms: i64) -> FileIntent {
    FileIntent {
        token: token.into(),
        kind: FileIntent::UPLOAD.into(),
        node: "a-node-that-was-killed:1:abcdef".into(),
        lease_until_ms,
    }
}

/// A small upload file of token `token` written straight into the app's storage.
async fn put_upload_file(app: &TestApp, token: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("f.parquet.tmp");
    std::fs::write(&tmp, b"PAR1 not really").unwrap();
    app.files.storage().put_file(&tmp, &format!("{token}.parquet")).await.unwrap();
}

async fn a_writer_that_stopped_has_its_files_cleared_when_its_lease_ends_and_cannot_commit_after(app: TestApp) {
    let integration = app.create_integration("Killed").await["token"].as_str().unwrap().to_string();
    let token = "usr_csts_upld_0123456789abcdef";
    // The node wrote its file under its intent and was killed before its commit: its lease ran out. (The
    // file is checked before the expired intent is recorded: from then on the server's own janitor, which
    // runs beside the test, may clear both at any moment.)
    put_upload_file(&app, token).await;
    assert!(app.files.storage().exists(token).await.unwrap());
    app.store.begin_file_intent(&intent(token, costd::service::files::now_ms() - 1)).await.unwrap();

    // This test's janitor pass clears it, unless the server's own janitor (its start-up pass runs beside
    // the test) did so first: either way the files and the intent are gone.
    let collected = app.collect_files().await;
    assert!(collected.abandoned <= 1, "{collected:?}");
    assert!(!app.files.storage().exists(token).await.unwrap());
    assert!(app.store.file_intents().await.unwrap().is_empty());

    // The node was only cut off, and now tries to commit: nothing is recorded, so nothing is acknowledged.
    let upload = crate::uploads::upload_row(&app, &integration.as_str().into(), token.into(), "late.csv");
    let catalog = costd::engine::discovery::Catalog::default();
    let committed = app.store.commit_upload(&app.account.token, &upload, &catalog).await.unwrap();
    assert!(matches!(committed, costd::store::UploadCommit::IntentLost), "{committed:?}");
    let listed = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(listed.body["user_costs_uploads"].as_array().unwrap().len(), 0);
}

async fn a_live_intent_keeps_its_files_from_every_janitor_however_old_they_are(app: TestApp) {
    let token = "usr_csts_upld_fedcba9876543210";
    app.store.begin_file_intent(&intent(token, costd::service::files::now_ms() + 60_000)).await.unwrap();
    put_upload_file(&app, token).await;
    let collected = app.collect_files().await;
    assert_eq!((collected.orphans, collected.abandoned), (0, 0), "{collected:?}");
    assert!(app.files.storage().exists(token).await.unwrap());
    // Renewed, it stays; ended (its writer gave up), the file is an orphan like any other.
    assert!(app.store.renew_file_intent(token, costd::service::files::now_ms() + 60_000).await.unwrap());
    app.store.end_file_intent(token).await.unwrap();
    assert!(!app.store.renew_file_intent(token, 0).await.unwrap());
    assert_eq!(app.collect_files().await.orphans, 1);
    assert!(!app.files.storage().exists(token).await.unwrap());
}
