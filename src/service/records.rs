//! The alerts wing's records (`store::wing`) as services read and write them: the store's outcomes turned
//! into the service's errors once (not found, a duplicate, a reference deleted meanwhile, in use).

use crate::model::record::Record;
use crate::model::token::AccountToken;
use crate::service::ServiceError;
use crate::store::wing::{Kind, RecordDeletion, RecordFilter, Written};
use crate::store::Store;

type Result<T> = std::result::Result<T, ServiceError>;

/// A kind's record as the store returns it.
pub type Rec<K> = Record<<K as Kind>::Token, <K as Kind>::Definition>;

pub async fn get<K: Kind>(store: &dyn Store, account: &AccountToken, token: &str) -> Result<Rec<K>> {
    store.record::<K>(account, token).await?.ok_or(ServiceError::NotFound(K::TABLE.noun))
}

/// Every record of the kind in the account (alerts and budgets are few per account: a list, not a query).
pub async fn all<K: Kind>(store: &dyn Store, account: &AccountToken) -> Result<Vec<Rec<K>>> {
    Ok(store.all_records::<K>(account, &RecordFilter::default()).await?)
}

fn written<K: Kind>(w: Written<Rec<K>>) -> Result<Rec<K>> {
    match w {
        Written::Done(r) => Ok(r),
        Written::NotFound => Err(ServiceError::NotFound(K::TABLE.noun)),
        Written::Duplicate => Err(ServiceError::Conflict(format!("this {} exists already", K::TABLE.noun))),
        Written::BrokenReference => Err(ServiceError::Conflict(format!(
            "something this {} names was deleted meanwhile; check its references and try again",
            K::TABLE.noun
        ))),
    }
}

/// Creates (`token` none) or replaces a record.
pub async fn put<K: Kind>(
    store: &dyn Store,
    account: &AccountToken,
    token: Option<&str>,
    workspace_token: String,
    title: String,
    definition: &K::Definition,
) -> Result<Rec<K>> {
    written::<K>(match token {
        None => store.create_record::<K>(account, workspace_token, title, definition).await?,
        Some(t) => store.update_record_of::<K>(account, t, workspace_token, title, definition).await?,
    })
}

/// Deletes a record; one still in use is a 409 naming its users.
pub async fn delete<K: Kind>(store: &dyn Store, account: &AccountToken, token: &str) -> Result<()> {
    match store.delete_record_of::<K>(account, token).await? {
        RecordDeletion::Deleted => Ok(()),
        RecordDeletion::NotFound => Err(ServiceError::NotFound(K::TABLE.noun)),
        RecordDeletion::InUse(users) => {
            Err(ServiceError::Conflict(RecordDeletion::in_use_message(&users, K::TABLE.noun)))
        }
    }
}

/// A page of the account's records of the kind, oldest first, in one workspace when one is named.
pub async fn list<K: Kind>(
    store: &dyn Store,
    account: &AccountToken,
    workspace_token: Option<&str>,
    page: crate::store::PageRequest,
) -> Result<crate::store::Paged<Rec<K>>> {
    let filter = RecordFilter {
        workspace_token: workspace_token.map(str::trim).filter(|w| !w.is_empty()).map(str::to_string),
        ..Default::default()
    };
    Ok(store.records::<K>(account, &filter, page).await?)
}
