//! The store's own promises, checked on SQLite and PostgreSQL through the `Store` trait (no HTTP in the
//! assertions; uploads are made through the API only to have real rows): tenant isolation, retire on
//! replace, named locks, the user directory's batched read, and a broken UNIQUE constraint surfacing as a conflict rather than an internal error.

use costd::model::token::{IntegrationToken, UploadToken};
use costd::store::PageRequest;

use crate::helpers::{on_both_stores, TestApp};
use crate::uploads::csv;

on_both_stores!(
    another_tenant_reads_nothing_of_an_account_even_by_its_tokens,
    a_replaced_upload_is_retired_in_the_commit_of_its_replacement,
    a_named_lock_has_one_holder_at_a_time_on_a_shared_store,
    users_are_one_per_address_per_account_and_read_in_one_batch_in_the_order_asked,
    due_alert_messages_are_read_each_accounts_first_before_anyones_second,
);
// The alert tables' migration has tests of its own below: they seed a store at migration 15, not a new one.

async fn due_alert_messages_are_read_each_accounts_first_before_anyones_second(app: TestApp) {
    let store = app.store.as_ref();
    let (other, _) = app.other_account().await;
    let new = |account: &costd::model::token::AccountToken, i: usize| costd::store::NewNotification {
        account: account.clone(),
        source_token: "bdgt_alrt_x".into(),
        event_key: format!("k{i}"),
        recipient: "ops@example.com".into(),
        message: "{}".into(),
    };
    let busy: Vec<_> = (0..60).map(|i| new(&app.account.token, i)).collect();
    store.enqueue_notifications(&busy, 1).await.unwrap();
    store.enqueue_notifications(&[new(&other.token, 99)], 1).await.unwrap();
    // Written after 60 of the busy account's, read in the first two.
    let due = store.due_notifications(10, 50, 10).await.unwrap();
    assert_eq!(due.len(), 10);
    assert!(
        due[..2].iter().any(|n| n.account == other.token),
        "{:?}",
        due.iter().map(|n| &n.event_key).collect::<Vec<_>>()
    );
    let all = store.due_notifications(10, 50, 1000).await.unwrap();
    assert_eq!(all.len(), 51, "50 of the busy account's, 1 of the other's");
    assert!(store.due_notifications(0, 50, 1000).await.unwrap().is_empty(), "none due yet");
}

const PAGE: PageRequest = PageRequest { page: 1, limit: 100 };

async fn another_tenant_reads_nothing_of_an_account_even_by_its_tokens(app: TestApp) {
    let integration = app.create_integration("Mine").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&integration, "a.csv", csv(3).into_bytes()).await.status, 201);
    let integration = IntegrationToken::from(integration.as_str());
    let (other, _) = app.other_account().await;
    let store = app.store.as_ref();

    // The owner sees its integration and upload.
    assert!(store.get_integration(&app.account.token, &integration).await.unwrap().is_some());
    assert_eq!(store.live_uploads(&app.account.token, std::slice::from_ref(&integration)).await.unwrap().len(), 1);
    // Another account, even naming the token, reads nothing.
    assert!(store.get_integration(&other.token, &integration).await.unwrap().is_none());
    assert_eq!(store.list_integrations(&other.token, PAGE, None, None).await.unwrap().total, 0);
    assert!(store.live_uploads(&other.token, std::slice::from_ref(&integration)).await.unwrap().is_empty());
    assert!(store.set_integration_workspaces(&other.token, &integration, &[]).await.unwrap().is_none());
    // The owner's workspace is not the other's either.
    let workspaces = store.list_workspaces(&app.account.token, PAGE, None).await.unwrap();
    let workspace = &workspaces.items[0].token;
    assert!(store.get_workspace(&other.token, workspace).await.unwrap().is_none());
}

async fn a_replaced_upload_is_retired_in_the_commit_of_its_replacement(app: TestApp) {
    let integration = app.create_integration("Replaced").await["token"].as_str().unwrap().to_string();
    let first = app.upload(&integration, "month.csv", csv(3).into_bytes()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let first = UploadToken::from(first.body["token"].as_str().unwrap());
    let second = app.upload(&integration, "month.csv", csv(5).into_bytes()).await;
    let second = UploadToken::from(second.body["token"].as_str().unwrap());
    let store = app.store.as_ref();

    let live = store.live_uploads(&app.account.token, &[IntegrationToken::from(integration.as_str())]).await.unwrap();
    assert_eq!(live.iter().map(|u| u.token.clone()).collect::<Vec<_>>(), vec![second.clone()]);
    let retired: Vec<UploadToken> = store.retired_uploads().await.unwrap().into_iter().map(|(t, _)| t).collect();
    assert!(retired.contains(&first), "{retired:?}");
    assert!(!retired.contains(&second), "{retired:?}");
}

async fn a_named_lock_has_one_holder_at_a_time_on_a_shared_store(app: TestApp) {
    let store = app.store.as_ref();
    let held = store.try_lock("costd-conformance").await.unwrap().expect("a free lock is granted");
    // While one holds the lock no other gets it (another node of a PostgreSQL store; another pass of this
    // process, or `costd sync` beside `costd serve`, on a SQLite file), and releasing it frees it at once.
    assert!(store.try_lock("costd-conformance").await.unwrap().is_none(), "a held lock is refused");
    assert!(store.try_lock("costd-another").await.unwrap().is_some(), "locks are by name");
    assert!(store.try_lock("costd-sync:accss_crdntl_0123").await.unwrap().is_some(), "any name");
    held.release().await;
    let again = store.try_lock("costd-conformance").await.unwrap();
    assert!(again.is_some(), "a released lock is free again");
    drop(again);
    if matches!(app.backend, crate::helpers::Backend::Sqlite) {
        // Another process on the same data dir (`costd sync` beside `costd serve`) is refused while it is held.
        let held = store.try_lock("costd-sync:accss_crdntl_0123").await.unwrap().expect("free");
        let settings =
            costd::store::StoreSettings { data_dir: app.data_dir(), database_url: None, db_max_connections: 1 };
        let other = costd::store::connect(&settings).await.unwrap();
        assert!(other.try_lock("costd-sync:accss_crdntl_0123").await.unwrap().is_none());
        drop(held);
        assert!(other.try_lock("costd-sync:accss_crdntl_0123").await.unwrap().is_some());
        other.close().await;
    }
}

async fn users_are_one_per_address_per_account_and_read_in_one_batch_in_the_order_asked(app: TestApp) {
    use costd::model::user::NewUser;
    let store = app.store.as_ref();
    let me = &app.account.token;
    let (other, _) = app.other_account().await;
    let user = |email: &str| NewUser::parse(email, None, None).unwrap();
    let ana = store.create_user(me, &user("ana@example.com")).await.unwrap();
    let ben = store.create_user(me, &user("ben@example.com")).await.unwrap();
    // The same address twice in one account is a unique violation (a 409 through the API), in another fine.
    let again = store.create_user(me, &user("ana@example.com")).await.unwrap_err();
    assert!(costd::store::unique_violation(&again).is_some(), "{again:#}");
    let theirs = store.create_user(&other.token, &user("ana@example.com")).await.unwrap();
    // One read for many: in the order asked, unknown and other tenants' tokens left out.
    let asked = [ben.token.clone(), "usr_0000000000000000".into(), theirs.token.clone(), ana.token.clone()];
    let found: Vec<String> = store.users_by_tokens(me, &asked).await.unwrap().into_iter().map(|u| u.email).collect();
    assert_eq!(found, ["ben@example.com", "ana@example.com"]);
    assert!(store.get_user(&other.token, &ana.token).await.unwrap().is_none());
    let page = store.list_users(me, PageRequest { page: 2, limit: 1 }).await.unwrap();
    assert_eq!((page.total, page.items[0].email.as_str()), (2, "ben@example.com"), "oldest first");
}

/// Rows of the alerts wing as they were stored before migration 0016 (all in `report_objects`): a report, two
/// leaf budgets and a hierarchical one, an alert on a budget naming a user, a cost alert with an event,
/// a report summary, an anomaly notification, and the same anomaly recorded twice (the old title check
/// could race).
const OLD_SHAPE: &str = r#"
INSERT INTO accounts (token, name, owner_user_token, created_at) VALUES ('acct_m', 'M', 'usr_owner', '2026-01-01T00:00:00Z');
INSERT INTO workspaces (token, account_token, name, enable_currency_conversion, currency, exchange_rate_date, created_at)
  VALUES ('wrkspc_m', 'acct_m', 'W', {false}, 'USD', 'daily', '2026-01-01T00:00:00Z');
INSERT INTO users (token, account_token, name, email, role, created_at) VALUES ('usr_m', 'acct_m', NULL, 'm@example.com', 'owner', '2026-01-01T00:00:00Z');
INSERT INTO report_objects (token, kind, account_token, workspace_token, folder_token, title, definition, created_at, updated_at) VALUES
 ('rprt_m', 'cost_report', 'acct_m', 'wrkspc_m', NULL, 'All', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('bdgt_leaf1', 'budget', 'acct_m', 'wrkspc_m', NULL, 'Leaf 1', '{"cost_report_token":"rprt_m","child_budget_tokens":[],"periods":[{"start":"2026-01-01","end":"2026-01-31","amount":"100"}]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('bdgt_leaf2', 'budget', 'acct_m', 'wrkspc_m', NULL, 'Leaf 2', '{"cost_report_token":"rprt_m","child_budget_tokens":[],"periods":[]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('bdgt_top', 'budget', 'acct_m', 'wrkspc_m', NULL, 'Top', '{"cost_report_token":null,"child_budget_tokens":["bdgt_leaf2","bdgt_leaf1"],"periods":[]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('bdgt_alrt_m', 'budget_alert', 'acct_m', 'wrkspc_m', NULL, '80% of bdgt_leaf1', '{"budget_tokens":["bdgt_leaf1"],"threshold":80,"user_tokens":["usr_m"],"duration_in_days":null,"period_to_track":"start_of_the_month","recipient_channels":[]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('cst_alrt_m', 'cost_alert', 'acct_m', 'wrkspc_m', NULL, 'Jump', '{"interval":"day","threshold":"10","unit_type":"currency","minimum_threshold":null,"report_tokens":["rprt_m"],"email_recipients":["ops@example.com"],"slack_channels":[],"teams_channels":[]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('rprt_ntfctn_m', 'report_notification', 'acct_m', 'wrkspc_m', NULL, 'Daily', '{"cost_report_token":"rprt_m","frequency":"day","change":"dollars","user_tokens":["usr_m"],"recipient_channels":[]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('anmly_ntfctn_m', 'anomaly_notification', 'acct_m', 'wrkspc_m', NULL, 'anomalies of All', '{"cost_report_token":"rprt_m","threshold":10,"user_tokens":[],"recipient_channels":["ops@example.com"]}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('anmly_alrt_a', 'anomaly_alert', 'acct_m', 'wrkspc_m', NULL, 'anomaly:rprt_m:aws:EC2:2026-01-05', '{"cost_report_token":"rprt_m","provider":"aws","service":"EC2","category":"Usage","day":"2026-01-05","amount":"900","previous_amount":"100","seven_day_average":"200","status":"active","feedback":null}', '2026-01-06T00:00:00Z', '2026-01-06T00:00:00Z'),
 ('anmly_alrt_b', 'anomaly_alert', 'acct_m', 'wrkspc_m', NULL, 'anomaly:rprt_m:aws:EC2:2026-01-05', '{"cost_report_token":"rprt_m","provider":"aws","service":"EC2","category":"Usage","day":"2026-01-05","amount":"900","previous_amount":"100","seven_day_average":"200","status":"active","feedback":null}', '2026-01-06T00:00:01Z', '2026-01-06T00:00:01Z');
INSERT INTO report_objects (token, kind, account_token, workspace_token, folder_token, title, definition, created_at, updated_at) VALUES
 ('cst_alrt_evnt_m', 'cost_alert_event', 'acct_m', 'wrkspc_m', 'cst_alrt_m', 'cost_alert:cst_alrt_m:rprt_m:2026-01-04', '{"report_token":"rprt_m","description":"rose","metadata":{"change":"20"}}', '2026-01-05T00:00:00Z', '2026-01-05T00:00:00Z');
"#;

#[tokio::test]
async fn the_alert_tables_migration_moves_every_kind_out_of_report_objects_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    let url = format!("sqlite://{}", path.display());
    {
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        before_0016(sqlx::migrate!("crates/store/src/sqlite/migrations")).run(&pool).await.unwrap();
        sqlx::raw_sql(&OLD_SHAPE.replace("{false}", "0")).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let store = costd::store::sqlite::SqliteStore::connect(&path.display().to_string(), 2).await.unwrap();
    the_old_rows_arrive_typed(std::sync::Arc::new(store)).await;
}

#[tokio::test]
async fn the_alert_tables_migration_moves_every_kind_out_of_report_objects_on_postgres() {
    let Some(url) = crate::helpers::postgres_schema_url().await else { return };
    {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        before_0016(sqlx::migrate!("crates/store/src/postgres/migrations")).run(&pool).await.unwrap();
        sqlx::raw_sql(&OLD_SHAPE.replace("{false}", "FALSE")).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let store = costd::store::postgres::PgStore::connect(&url, 2).await.unwrap();
    the_old_rows_arrive_typed(std::sync::Arc::new(store)).await;
}

/// The migrations before the alert tables.
fn before_0016(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.migrations =
        std::borrow::Cow::Owned(migrator.migrations.iter().filter(|m| m.version < 16).cloned().collect());
    assert_eq!(migrator.migrations.len(), 15);
    migrator
}

async fn the_old_rows_arrive_typed(store: costd::store::DynStore) {
    use costd::store::wing::{
        AnomalyAlerts, AnomalyNotifications, BudgetAlerts, Budgets, CostAlertEvents, CostAlerts, RecordDeletion,
        RecordFilter, ReportNotifications,
    };
    let store = store.as_ref();
    let account = costd::model::token::AccountToken::from("acct_m");
    let all = RecordFilter::default();
    let budgets = store.all_records::<Budgets>(&account, &all).await.unwrap();
    assert_eq!(budgets.iter().map(|b| b.title.as_str()).collect::<Vec<_>>(), ["Leaf 1", "Leaf 2", "Top"], "in order");
    assert_eq!(budgets[2].definition.child_budget_tokens, ["bdgt_leaf2", "bdgt_leaf1"], "children in their order");
    assert_eq!(budgets[0].definition.periods[0].amount.to_string(), "100.0");
    let alert = store.record::<BudgetAlerts>(&account, "bdgt_alrt_m").await.unwrap().unwrap();
    assert_eq!((alert.definition.threshold, alert.definition.user_tokens.clone()), (80, vec!["usr_m".to_string()]));
    assert_eq!(store.all_records::<CostAlerts>(&account, &all).await.unwrap().len(), 1);
    let events = store.all_records::<CostAlertEvents>(&account, &all).await.unwrap();
    assert_eq!(
        (events.len(), events[0].definition.alert_token.as_str(), events[0].definition.report_token.as_str()),
        (1, "cst_alrt_m", "rprt_m"),
        "the event names its alert now"
    );
    assert_eq!(store.all_records::<ReportNotifications>(&account, &all).await.unwrap().len(), 1);
    assert_eq!(store.all_records::<AnomalyNotifications>(&account, &all).await.unwrap().len(), 1);
    let anomalies = store.all_records::<AnomalyAlerts>(&account, &all).await.unwrap();
    assert_eq!(anomalies.len(), 1, "one anomaly per report, provider, service and day");

    // report_objects holds reports, folders and saved filters again.
    let reports = store
        .list_report_objects(&account, costd::model::report::ViewKind::CostReport, &Default::default(), PAGE)
        .await
        .unwrap();
    assert_eq!(reports.total, 1);

    // The references are the database's now: what is in use is refused, naming its users.
    match store.delete_record_of::<Budgets>(&account, "bdgt_leaf1").await.unwrap() {
        RecordDeletion::InUse(users) => {
            let named: Vec<&str> = users.iter().map(|(_, t)| t.as_str()).collect();
            assert_eq!(named, ["bdgt_top", "bdgt_alrt_m"]);
        }
        other => panic!("{other:?}"),
    }
    match store.delete_report_object(&account, costd::model::report::ViewKind::CostReport, "rprt_m").await.unwrap() {
        costd::store::ReportObjectDeletion::InUse(users) => assert_eq!(users.len(), 5, "{users:?}"),
        other => panic!("{other:?}"),
    }
    // Deleting the cost alert takes its event along.
    assert_eq!(store.delete_record_of::<CostAlerts>(&account, "cst_alrt_m").await.unwrap(), RecordDeletion::Deleted);
    assert!(store.all_records::<CostAlertEvents>(&account, &all).await.unwrap().is_empty());
}
