//! Outgrowing one machine: upload files in a bucket of a real S3 API server (moto in server mode, started
//! by each test), and several `costd serve` nodes on one PostgreSQL and one bucket.

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::cli::{serve_with, Served};
use crate::helpers::{postgres_schema_url, Backend, TestApp};
use crate::uploads::{csv, HEADER};

/// A moto S3 server on a free port, stopped when dropped.
pub struct S3Server {
    _child: tokio::process::Child,
    pub endpoint: String,
}

static BUCKET_SEQ: AtomicU32 = AtomicU32::new(0);

impl S3Server {
    /// Starts `moto_server`; `None` (with a message) when it is not installed outside CI.
    pub async fn start() -> Option<S3Server> {
        let installed = std::process::Command::new("moto_server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(std::env::var("CI").is_err(), "CI must run the S3 tests: moto_server is not installed");
            eprintln!("SKIPPED: moto_server is not installed (pip install 'moto[server]')");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if reqwest::get(&endpoint).await.is_ok() {
                return Some(S3Server { _child: child, endpoint });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not answer on {endpoint} within 30 s");
    }

    /// A new, empty bucket.
    pub async fn bucket(&self) -> String {
        let name = format!("costd-{}-{}", std::process::id(), BUCKET_SEQ.fetch_add(1, Ordering::Relaxed));
        let res = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(res.status().is_success(), "create bucket: {}", res.status());
        name
    }

    /// The keys in `bucket`, sorted.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let xml = reqwest::get(format!("{}/{bucket}?list-type=2", self.endpoint)).await.unwrap().text().await.unwrap();
        let mut keys: Vec<String> =
            xml.split("<Key>").skip(1).map(|rest| rest.split("</Key>").next().unwrap().to_string()).collect();
        keys.sort();
        keys
    }

    /// Writes an object behind costd's back.
    pub async fn put(&self, bucket: &str, key: &str, body: &'static [u8]) {
        let res = reqwest::Client::new().put(format!("{}/{bucket}/{key}", self.endpoint)).body(body).send().await;
        assert!(res.unwrap().status().is_success());
    }

    /// costd's settings for `bucket`, uploads under the prefix `tenant-a`.
    pub fn settings(&self, bucket: &str) -> costd::config::StorageSettings {
        costd::config::StorageSettings {
            storage: Some(format!("s3://{bucket}/tenant-a")),
            s3_endpoint: Some(self.endpoint.clone()),
            s3_region: Some("us-east-1".into()),
            s3_access_key_id: Some("testing".into()),
            s3_secret_access_key: Some("testing".into()),
            ..Default::default()
        }
    }

    /// The same settings as `costd serve` flags.
    pub fn flags(&self, bucket: &str) -> Vec<String> {
        let s = self.settings(bucket);
        vec![
            "--storage".into(),
            s.storage.unwrap(),
            "--s3-endpoint".into(),
            s.s3_endpoint.unwrap(),
            "--s3-access-key-id".into(),
            "testing".into(),
            "--s3-secret-access-key".into(),
            "testing".into(),
        ]
    }
}

fn upload_key(token: &str) -> String {
    format!("tenant-a/uploads/{token}.parquet")
}

#[tokio::test]
async fn upload_files_live_in_the_bucket_from_commit_to_janitor_on_sqlite() {
    upload_files_live_in_the_bucket_from_commit_to_janitor(Backend::Sqlite).await;
}

#[tokio::test]
async fn upload_files_live_in_the_bucket_from_commit_to_janitor_on_postgres() {
    upload_files_live_in_the_bucket_from_commit_to_janitor(Backend::Postgres).await;
}

async fn upload_files_live_in_the_bucket_from_commit_to_janitor(backend: Backend) {
    let Some(s3) = S3Server::start().await else { return };
    let bucket = s3.bucket().await;
    let Some(app) = TestApp::spawn_on(backend, Some(&s3.settings(&bucket)), |_| {}).await else { return };
    let integration = app.create_integration("Bucketed").await["token"].as_str().unwrap().to_string();

    // A committed upload is one object in the bucket, and nothing stays in the local spool.
    let first = app.upload(&integration, "costs.csv", csv(8).into_bytes()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let first = first.body["token"].as_str().unwrap().to_string();
    assert_eq!(s3.keys(&bucket).await, vec![upload_key(&first)]);
    assert!(app.upload_files().is_empty(), "nothing local: {:?}", app.upload_files());
    let costs = "/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service&date_bin=month";
    let res = app.get(costs).await;
    assert_eq!(res.body["total_cost"]["amount"], "10.0", "{}", res.text);
    assert_eq!(app.scanned_total(&[&integration]).await, (8, "10.0".to_string()));

    // An upload whose rows repeat their day and dimensions gets a rollup object beside its file, and the
    // query that reads it answers to the last digit as the rows do.
    let mut repeated = format!("{HEADER}\n");
    for i in 0..40 {
        repeated.push_str(&format!("Usage,2024-09-0{},0.000000000000000{},EC2,us-east-1\n", i % 2 + 1, i % 9 + 1));
    }
    let rolled = app.upload(&integration, "rolled.csv", repeated.into_bytes()).await;
    assert_eq!(rolled.status, 201, "{}", rolled.text);
    let rolled = rolled.body["token"].as_str().unwrap().to_string();
    let keys = s3.keys(&bucket).await;
    for level in ["rollup", "rollup.coarse"] {
        assert!(keys.contains(&format!("tenant-a/uploads/{rolled}.{level}.parquet")), "{keys:?}");
    }
    let res = app.get(&format!("{costs}&filter=costs.service%20%3D%20%27EC2%27")).await;
    assert_eq!(res.body["costs"][0]["amount"], "0.000000000000019", "{}", res.text);
    assert_eq!(app.delete(&format!("/v2/integrations/{integration}/costs/{rolled}")).await.status, 204);
    assert_eq!(app.collect_files().await.retired, 1);
    assert_eq!(s3.keys(&bucket).await, vec![upload_key(&first)], "the rollup goes with its upload");

    // A bad CSV leaves nothing anywhere.
    let bad = app.upload(&integration, "bad.csv", format!("{HEADER}\nUsage,2024-09-01,abc,EC2,x\n").into_bytes()).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(s3.keys(&bucket).await, vec![upload_key(&first)]);
    assert!(app.upload_files().is_empty());

    // A replaced upload's object stays until the janitor's pass, then goes.
    let second = app.upload(&integration, "costs.csv", csv(2).into_bytes()).await;
    let second = second.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.get(costs).await.body["total_cost"]["amount"], "2.5");
    assert_eq!(s3.keys(&bucket).await.len(), 2);

    // An orphan (an object no upload row names: a node died between its PUT and its commit) goes too; an
    // object that is no upload file is never touched.
    s3.put(&bucket, "tenant-a/uploads/usr_csts_upld_orphan.parquet", b"PAR1").await;
    s3.put(&bucket, "tenant-a/uploads/README.txt", b"not costd's").await;
    let collected = app.collect_files().await;
    assert_eq!((collected.retired, collected.orphans), (1, 1), "{collected:?}");
    assert_eq!(s3.keys(&bucket).await, {
        let mut keys = vec![upload_key(&second), "tenant-a/uploads/README.txt".to_string()];
        keys.sort();
        keys
    });

    // Deleting the upload removes its object after the next pass; the costs are gone at once.
    assert_eq!(app.delete(&format!("/v2/integrations/{integration}/costs/{second}")).await.status, 204);
    assert_eq!(app.get(costs).await.body["total_cost"]["amount"], "0.0");
    app.collect_files().await;
    assert_eq!(s3.keys(&bucket).await, vec!["tenant-a/uploads/README.txt".to_string()]);
}

#[tokio::test]
async fn a_missing_object_fails_the_query_instead_of_answering_short() {
    let Some(s3) = S3Server::start().await else { return };
    let bucket = s3.bucket().await;
    let app = TestApp::spawn_on(Backend::Sqlite, Some(&s3.settings(&bucket)), |_| {}).await.unwrap();
    let integration = app.create_integration("Lost").await["token"].as_str().unwrap().to_string();
    let up = app.upload(&integration, "a.csv", csv(3).into_bytes()).await;
    let token = up.body["token"].as_str().unwrap();
    // Lost behind costd's back (moto refuses unsigned deletes: removed through a signed client).
    app.files.storage().remove(token).await.unwrap();
    assert!(s3.keys(&bucket).await.is_empty());
    let res = app.get("/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service").await;
    assert_eq!(res.status, 500, "lost data is an error, never a short total: {}", res.text);
}

#[tokio::test]
async fn storage_flags_that_name_no_bucket_stop_serve_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_costd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--storage", "gs://costs", "--data-dir"])
        .arg(dir.path())
        .env_remove("COSTD_DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("s3://BUCKET/PREFIX"), "{stderr}");
}

/// One `costd serve` node of a deployment on `database_url` and `bucket`.
async fn node(s3: &S3Server, bucket: &str, database_url: &str, data_dir: &std::path::Path) -> Served {
    let mut flags = s3.flags(bucket);
    flags.extend(
        [
            "--database-url",
            database_url,
            "--auth-cache-ttl-ms",
            "0",
            "--query-timeout-secs",
            "1",
            "--file-grace-secs",
            "2",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    serve_with(data_dir, &flags).await
}

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.bearer_auth(&self.token).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, node: &Served, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", node.url))).await
    }

    async fn post(&self, node: &Served, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", node.url)).json(&body)).await
    }

    async fn put(&self, node: &Served, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.put(format!("{}{path}", node.url)).json(&body)).await
    }

    async fn upload(&self, node: &Served, integration: &str, filename: &str, body: String) -> (u16, Value) {
        let form = reqwest::multipart::Form::new()
            .part("csv", reqwest::multipart::Part::bytes(body.into_bytes()).file_name(filename.to_string()));
        let url = format!("{}/v2/integrations/{integration}/costs.csv", node.url);
        self.send(self.http.post(url).multipart(form)).await
    }

    async fn total(&self, node: &Served, token: Option<&str>) -> String {
        let path = "/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service&date_bin=month";
        let mut req = self.http.get(format!("{}{path}", node.url));
        req = req.bearer_auth(token.unwrap_or(&self.token));
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["total_cost"]["amount"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn two_nodes_on_one_postgres_and_one_bucket_answer_alike_and_survive_a_kill_mid_upload() {
    let Some(s3) = S3Server::start().await else { return };
    let Some(database_url) = postgres_schema_url().await else { return };
    let bucket = s3.bucket().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Both start at once on a new database: migrations and the bootstrap happen once.
    let (mut a, b) =
        tokio::join!(node(&s3, &bucket, &database_url, dir_a.path()), node(&s3, &bucket, &database_url, dir_b.path()));
    let tokens: Vec<&String> = [&a, &b].iter().filter_map(|n| n.bootstrap_token.as_ref()).collect();
    assert_eq!(tokens.len(), 1, "exactly one node bootstraps the new store");
    let client = Client { http: reqwest::Client::new(), token: tokens[0].clone() };

    // Upload through one node, query through the other.
    let (status, integration) = client
        .post(&a, "/v2/integrations/custom_provider", json!({"name": "Shared", "description": "two nodes"}))
        .await;
    assert_eq!(status, 201);
    let integration = integration["token"].as_str().unwrap().to_string();
    let (status, up) = client.upload(&a, &integration, "costs.csv", csv(8)).await;
    assert_eq!(status, 201, "{up}");
    assert_eq!(client.total(&b, None).await, "10.0");
    assert_eq!(client.total(&a, None).await, "10.0");

    // A result cached on one node never outlives a change made through the other: a replaced upload …
    let (status, _) = client.upload(&b, &integration, "costs.csv", csv(4)).await;
    assert_eq!(status, 201);
    assert_eq!(client.total(&a, None).await, "5.0");
    // … or an edited rule of a managed account.
    let (_, rule) =
        client.post(&a, "/v2/billing_rules", json!({"type": "adjustment", "title": "80%", "percentage": 80})).await;
    let rule = rule["token"].as_str().unwrap().to_string();
    let (status, managed) = client
        .post(
            &a,
            "/v2/managed_accounts",
            json!({"name": "Customer", "contact_email": "ops@customer.example", "access_credential_tokens": [integration], "billing_rule_tokens": [rule]}),
        )
        .await;
    assert_eq!(status, 201, "{managed}");
    let customer_token = mint_with_cli(&database_url, managed["token"].as_str().unwrap()).await;
    assert_eq!(client.total(&b, Some(&customer_token)).await, "4.0");
    let (status, _) = client.put(&a, &format!("/v2/billing_rules/{rule}"), json!({"percentage": 50})).await;
    assert_eq!(status, 200);
    assert_eq!(client.total(&b, Some(&customer_token)).await, "2.5");

    // A data export made by one node is served by the other (its file is in the bucket).
    let (status, export) =
        client.post(&a, "/v2/costs/data_exports", json!({"start_date": "2024-09-01", "end_date": "2024-09-30"})).await;
    assert_eq!(status, 202, "{export}");
    let export = export["token"].as_str().unwrap().to_string();
    let mut manifest = Value::Null;
    for _ in 0..200 {
        let (status, body) = client.get(&b, &format!("/v2/data_exports/{export}")).await;
        if status == 200 {
            manifest = body;
            break;
        }
        assert_eq!(status, 202, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let file = manifest["manifest"]["files"][0].as_str().expect("a finished export names its file");
    let path = &file[file.find("/v2/").unwrap()..];
    let csv_text = client.http.get(format!("{}{path}", b.url)).bearer_auth(&client.token).send().await.unwrap();
    assert_eq!(csv_text.status(), 200);
    let csv_text = csv_text.text().await.unwrap();
    assert!(csv_text.starts_with("accrued_at,") && csv_text.lines().count() > 1, "{csv_text}");
    assert!(s3.keys(&bucket).await.contains(&format!("tenant-a/exports/{export}.csv")));

    // Node A dies in the middle of an upload: B's totals stay exact and nothing half-written shows.
    let rows = futures::stream::iter(0..200).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let chunk = if i == 0 { format!("{HEADER}\n") } else { String::new() }
            + &"Usage,2024-09-03,100.00,Doomed,us-east-1\n".repeat(50);
        Ok::<_, std::io::Error>(chunk)
    });
    let form = reqwest::multipart::Form::new()
        .part("csv", reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(rows)).file_name("doomed.csv"));
    let doomed = client
        .http
        .post(format!("{}/v2/integrations/{integration}/costs.csv", a.url))
        .bearer_auth(&client.token)
        .multipart(form)
        .send();
    let doomed = tokio::spawn(doomed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let _ = doomed.await; // the connection dropped, or the server had already answered 201 and died
    assert_eq!(client.total(&b, None).await, "5.0");
    let (_, list) = client.get(&b, &format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(list["user_costs_uploads"].as_array().unwrap().len(), 1, "{list}");
    let spool: Vec<String> = std::fs::read_dir(dir_a.path().join("uploads"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    assert!(
        spool.len() == 1 && spool[0].ends_with(".parquet.tmp"),
        "the ingest was under way: its temporary file, and only that, is left: {spool:?}"
    );

    // A restarted A answers the same, and its janitor clears what the killed ingest left in its spool;
    // the bucket holds exactly the live upload once the grace period has passed.
    let a = node(&s3, &bucket, &database_url, dir_a.path()).await;
    assert!(a.bootstrap_token.is_none());
    assert_eq!(client.total(&a, None).await, "5.0");
    let live = list["user_costs_uploads"][0]["token"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let spool_left = std::fs::read_dir(dir_a.path().join("uploads")).map(|d| d.count()).unwrap_or(0);
        let keys = s3.keys(&bucket).await;
        let uploads: Vec<&String> = keys.iter().filter(|k| k.contains("/uploads/")).collect();
        if spool_left == 0 && uploads == vec![&upload_key(&live)] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left: {spool_left} local files, bucket {keys:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(b);
}

/// A read token for `account` minted by `costd token create` against the deployment's database.
async fn mint_with_cli(database_url: &str, account: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_costd"))
        .args([
            "token",
            "create",
            "--account",
            account,
            "--scope",
            "read",
            "--database-url",
            database_url,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn one_janitor_at_a_time_holds_the_lock_across_nodes() {
    let Some(database_url) = postgres_schema_url().await else { return };
    let settings = |dir: &std::path::Path| costd::store::StoreSettings {
        data_dir: dir.to_path_buf(),
        database_url: Some(database_url.clone()),
        db_max_connections: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (
        costd::store::connect(&settings(dir.path())).await.unwrap(),
        costd::store::connect(&settings(dir.path())).await.unwrap(),
    );
    let held = one.try_lock(costd::service::files::JANITOR_LOCK).await.unwrap().expect("a free lock is granted");
    assert!(two.try_lock(costd::service::files::JANITOR_LOCK).await.unwrap().is_none(), "held by the other node");
    assert!(two.try_lock("another lock").await.unwrap().is_some(), "locks are by name");
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while two.try_lock(costd::service::files::JANITOR_LOCK).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "a dropped lock is released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
