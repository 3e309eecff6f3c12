//! Workspaces: an account's containers for reports and integrations. Created and changed from a request's
//! fields (an update lays the fields it sets over the current ones, then checks the whole as a create would);
//! an account always keeps at least one.

use crate::model::token::AccountToken;
use crate::model::workspace::{WorkspaceFields, WorkspaceSettings};
use crate::service::ServiceError;
use crate::store::{PageRequest, Paged, Store, Workspace, WorkspaceDeletion};

const NOT_FOUND: ServiceError = ServiceError::NotFound("workspace");

/// A page of the account's workspaces; `name_like` (blank is none) keeps those whose name holds it.
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    page: PageRequest,
    name_like: Option<&str>,
) -> Result<Paged<Workspace>, ServiceError> {
    Ok(store.list_workspaces(account, page, name_like.filter(|q| !q.trim().is_empty())).await?)
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &str) -> Result<Workspace, ServiceError> {
    store.get_workspace(account, token).await?.ok_or(NOT_FOUND)
}

pub async fn create(
    store: &dyn Store,
    account: &AccountToken,
    fields: WorkspaceFields,
) -> Result<Workspace, ServiceError> {
    let settings = WorkspaceSettings::try_from(fields).map_err(ServiceError::Invalid)?;
    Ok(store.create_workspace(account, &settings).await?)
}

pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: WorkspaceFields,
) -> Result<Workspace, ServiceError> {
    let current = get(store, account, token).await?;
    let settings = WorkspaceSettings::try_from(WorkspaceFields::from(current.settings).overlay(fields))
        .map_err(ServiceError::Invalid)?;
    store.update_workspace(account, token, &settings).await?.ok_or(NOT_FOUND)
}

pub async fn delete(store: &dyn Store, account: &AccountToken, token: &str) -> Result<(), ServiceError> {
    match store.delete_workspace(account, token).await? {
        WorkspaceDeletion::Deleted => Ok(()),
        WorkspaceDeletion::NotFound => Err(NOT_FOUND),
        WorkspaceDeletion::LastWorkspace => Err(ServiceError::unprocessable(
            "an account must keep at least one workspace; create another before deleting this one",
        )),
    }
}
