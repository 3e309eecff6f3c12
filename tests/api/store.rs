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
