//! Integrations: a custom provider's create; Vantage's update (its workspaces, each checked to be the
//! caller's) and costd's key rotation of a bucket integration (the credentials resealed in place, its loaded
//! periods kept, and a sync started); "Sync now"; and starting a sync in the background, which the create,
//! update and "Sync now" requests all do. (A bucket integration's create is `service::sync::create`.)

use crate::model::integration::{workspace_list, CustomProviderFields, IntegrationUpdateFields, NewCustomProvider};
use crate::model::token::{AccountToken, IntegrationToken};
use crate::service::sync::{claim, sync_claimed, Quiet, SyncClaim, SyncContext, SyncOptions, SyncReport, NOT_A_BUCKET};
use crate::service::ServiceError;
use crate::store::{Integration, PageRequest, Paged, Store};

const NOT_FOUND: ServiceError = ServiceError::NotFound("integration");

/// A page of the account's integrations, optionally only one provider's or those of one name.
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    page: PageRequest,
    provider: Option<&str>,
    account_identifier: Option<&str>,
) -> Result<Paged<Integration>, ServiceError> {
    Ok(store.list_integrations(account, page, provider, account_identifier).await?)
}

pub async fn get(
    store: &dyn Store,
    account: &AccountToken,
    token: &IntegrationToken,
) -> Result<Integration, ServiceError> {
    store.get_integration(account, token).await?.ok_or(NOT_FOUND)
}

/// `POST /v2/integrations/custom_provider`: an integration that costs are uploaded into.
pub async fn create_custom_provider(
    store: &dyn Store,
    account: &AccountToken,
    fields: CustomProviderFields,
) -> Result<Integration, ServiceError> {
    let new = NewCustomProvider::try_from(fields).map_err(ServiceError::Invalid)?;
    Ok(store.create_integration(account, &new.name, new.description.as_deref()).await?)
}

/// Deletes the integration with its uploads; their files are retired with them, and the janitor removes them
/// once no query reads them.
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &IntegrationToken) -> Result<(), ServiceError> {
    store.delete_integration(account, token).await?.ok_or(NOT_FOUND)?;
    Ok(())
}

/// What "Sync now" did.
pub enum SyncNow {
    /// The sync runs in the background: the integration as it was, its `status` `importing`.
    Started(Integration),
    /// The sync ran: the integration as it is afterwards.
    Synced(Integration),
}

/// "Sync now" (`POST /v2/integrations/{token}/sync`): the bucket integration syncs in the background, or
/// before this returns when `wait`. It is claimed first (`service::sync::claim`), so a second sync of one
/// integration, or one past the account's or the node's syncs, is refused at once; the sync runs in a task of
/// its own holding the claim, so a waiting request that is dropped leaves it to finish, still claimed.
pub async fn sync_now(
    ctx: &SyncContext,
    account: &AccountToken,
    token: &IntegrationToken,
    options: SyncOptions,
    wait: bool,
) -> Result<SyncNow, ServiceError> {
    let mut found = get(ctx.store.as_ref(), account, token).await?;
    if found.location.is_none() {
        return Err(ServiceError::invalid(NOT_A_BUCKET));
    }
    let claimed = claim(ctx, account, token).await?;
    ctx.store.record_sync(token, "importing", None, found.last_error.as_deref()).await?;
    let running = spawn_claimed(ctx.clone(), claimed, options);
    if !wait {
        found.status = "importing".into();
        return Ok(SyncNow::Started(found));
    }
    match running.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(anyhow::Error::new(e).context("the sync task failed").into()),
    }
    Ok(SyncNow::Synced(get(ctx.store.as_ref(), account, token).await?))
}

/// `PUT /v2/integrations/{token}`: new credentials (bucket integrations only) are sealed and a sync starts;
/// new workspaces replace the old ones once every one is found in the account. Answers the integration as
/// it is afterwards.
pub async fn update(
    ctx: &SyncContext,
    account: &AccountToken,
    token: &IntegrationToken,
    fields: IntegrationUpdateFields,
    options: SyncOptions,
) -> Result<Integration, ServiceError> {
    let store = ctx.store.as_ref();
    let current = store.get_integration(account, token).await?.ok_or(ServiceError::NotFound("integration"))?;
    if fields.credentials.any() {
        let provider = crate::model::bucket_export::Provider::parse(&current.provider)
            .filter(|_| current.location.is_some())
            .ok_or_else(|| ServiceError::Invalid(vec!["only aws and azure integrations have credentials".into()]))?;
        let credentials = fields.credentials.for_provider(provider, &ctx.allowed).map_err(ServiceError::Invalid)?;
        let sealed = ctx.secrets.seal(token, &credentials)?;
        if !store.set_integration_secret(account, token, &sealed).await? {
            return Err(ServiceError::NotFound("integration"));
        }
        start_sync(ctx, account, token, current.last_error.as_deref(), options).await?;
    }
    let Some(requested) = fields.workspace_tokens else {
        return store.get_integration(account, token).await?.ok_or(ServiceError::NotFound("integration"));
    };
    let workspaces = workspace_list(requested).map_err(ServiceError::Invalid)?;
    let mut unknown = Vec::new();
    for ws in &workspaces {
        if store.get_workspace(account, ws).await?.is_none() {
            unknown.push(format!("workspace_tokens: no workspace {ws} in this account"));
        }
    }
    if !unknown.is_empty() {
        return Err(ServiceError::Invalid(unknown));
    }
    store.set_integration_workspaces(account, token, &workspaces).await?.ok_or(ServiceError::NotFound("integration"))
}

/// Claims the integration and marks it `importing` (so a read right after the request sees the sync coming),
/// then syncs it in the background. A sync already under way (or no free slot) is left to itself: it is
/// logged, and the integration's next sync picks up what changed.
pub async fn start_sync(
    ctx: &SyncContext,
    account: &AccountToken,
    token: &IntegrationToken,
    last_error: Option<&str>,
    options: SyncOptions,
) -> anyhow::Result<()> {
    let claimed = match claim(ctx, account, token).await {
        Ok(c) => c,
        Err(ServiceError::Internal(e)) => return Err(e),
        Err(busy) => {
            tracing::info!(integration = %token, reason = %busy, "no sync started now");
            return Ok(());
        }
    };
    ctx.store.record_sync(token, "importing", None, last_error).await?;
    spawn_claimed(ctx.clone(), claimed, options);
    Ok(())
}

/// Syncs a claimed integration in a task of its own; the outcome is in its `status`, `last_synced_at` and
/// `last_error`, and in the task's result.
fn spawn_claimed(
    ctx: SyncContext,
    claimed: SyncClaim,
    options: SyncOptions,
) -> tokio::task::JoinHandle<Result<SyncReport, ServiceError>> {
    tokio::spawn(async move {
        let token = claimed.token().clone();
        let result = sync_claimed(&ctx, claimed, options, &Quiet).await;
        if let Err(e) = &result {
            tracing::warn!(integration = %token, error = format!("{e:#}"), "sync failed");
        }
        result
    })
}
