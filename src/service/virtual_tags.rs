//! Virtual tags (`/v2/virtual_tag_configs`, docs/allocation.md): saving them, checked whole, and the tags a
//! costs query applies. A tag is one row whose definition is one document, so a write is all or nothing:
//! an invalid value, a duplicate key or a 51st tag leaves every tag as it was. Writes made from a read
//! (an update, a value added or changed) name the version they read and are redone from a fresh read
//! when another write came between, so two value edits at once both land.

use crate::model::token::{AccountToken, BusinessMetricToken, VirtualTagToken, VirtualTagValueToken};
use crate::model::virtual_tag::{
    parse_value, Assign, Basis, TagFields, TagValue, ValueFields, VirtualTag, VirtualTagDefinition, MAX_TAGS,
    MAX_VALUES,
};
use crate::store::{Store, StoredVirtualTag, VirtualTagWrite};

use super::costs::{CostsAnswer, CostsContext};
use super::error::{Result, ServiceError};
use crate::model::cost_query::{CostQuery, Grouping};

/// How often a write made from a read is redone when others keep writing the same tag.
const ATTEMPTS: usize = 5;

fn not_found() -> ServiceError {
    ServiceError::NotFound("virtual tag config")
}

fn value_not_found() -> ServiceError {
    ServiceError::NotFound("virtual tag config value")
}

fn parsed(fields: TagFields) -> Result<VirtualTagDefinition> {
    VirtualTagDefinition::try_from(fields).map_err(ServiceError::Invalid)
}

/// Every business metric the tag's splits name is one of `account`'s (another tenant's is as unknown as a
/// made-up token), each refusal naming its value.
async fn check_metrics(store: &dyn Store, account: &AccountToken, definition: &VirtualTagDefinition) -> Result<()> {
    let mut problems = Vec::new();
    for (i, value) in definition.values.iter().enumerate() {
        let Assign::Proportional { basis: Basis::Metric { token, .. }, .. } = &value.assign else { continue };
        let found = match BusinessMetricToken::parse(token) {
            Some(t) => store.get_business_metric(account, &t).await?.is_some(),
            None => false,
        };
        if !found {
            problems
                .push(format!("values[{i}].business_metric_token: {token} is not a business metric of this account"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(problems))
    }
}

fn duplicate(key: &str) -> ServiceError {
    ServiceError::Conflict(format!("a virtual tag config with key {key:?} already exists"))
}

fn too_many() -> ServiceError {
    ServiceError::Unprocessable(vec![format!("an account may have at most {MAX_TAGS} virtual tag configs")])
}

/// The account's tags, oldest first; with `q`, those whose key contains it (any case).
#[tracing::instrument(skip(store))]
pub async fn list(store: &dyn Store, account: &AccountToken, q: Option<&str>) -> Result<Vec<VirtualTag>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
    Ok(store
        .list_virtual_tags(std::slice::from_ref(account))
        .await?
        .into_iter()
        .map(|t| t.tag)
        .filter(|t| q.as_ref().is_none_or(|q| t.definition.key.to_lowercase().contains(q)))
        .collect())
}

#[tracing::instrument(skip(store, fields))]
pub async fn create(
    store: &dyn Store,
    account: &AccountToken,
    created_by: &str,
    fields: TagFields,
) -> Result<VirtualTag> {
    let definition = parsed(fields)?;
    check_metrics(store, account, &definition).await?;
    match store.create_virtual_tag(account, Some(created_by), &definition).await? {
        VirtualTagWrite::Done(t) => Ok(t.tag),
        VirtualTagWrite::DuplicateKey => Err(duplicate(&definition.key)),
        VirtualTagWrite::TooMany => Err(too_many()),
        VirtualTagWrite::NotFound | VirtualTagWrite::Stale => Err(anyhow::anyhow!("a create that found no row").into()),
    }
}

async fn read(store: &dyn Store, account: &AccountToken, token: &VirtualTagToken) -> Result<StoredVirtualTag> {
    store.get_virtual_tag(account, token).await?.ok_or_else(not_found)
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &VirtualTagToken) -> Result<VirtualTag> {
    Ok(read(store, account, token).await?.tag)
}

/// Reads the tag, makes its new definition with `change` and writes it if nobody wrote in between (else
/// again from a fresh read). `change` also answers what the caller gets back.
async fn rewrite<T>(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    change: impl FnMut(&VirtualTagDefinition) -> Result<(VirtualTagDefinition, T)>,
) -> Result<(VirtualTag, T)> {
    let (stored, answer) = rewrite_stored(store, account, token, change).await?;
    Ok((stored.tag, answer))
}

/// [`rewrite`], answering the tag as stored (with the version the write made).
async fn rewrite_stored<T>(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    mut change: impl FnMut(&VirtualTagDefinition) -> Result<(VirtualTagDefinition, T)>,
) -> Result<(StoredVirtualTag, T)> {
    for _ in 0..ATTEMPTS {
        let current = read(store, account, token).await?;
        let (definition, answer) = change(&current.tag.definition)?;
        check_metrics(store, account, &definition).await?;
        match store.update_virtual_tag(account, token, current.version, &definition).await? {
            VirtualTagWrite::Done(t) => return Ok((t, answer)),
            VirtualTagWrite::DuplicateKey => return Err(duplicate(&definition.key)),
            VirtualTagWrite::NotFound => return Err(not_found()),
            VirtualTagWrite::TooMany => return Err(too_many()),
            VirtualTagWrite::Stale => continue,
        }
    }
    Err(ServiceError::TooMany("the virtual tag config is being changed by others; try again".into()))
}

/// How the tag `fields` defines would allocate the costs of `query` (grouped by the tag's key alone), as if
/// it were saved in place of the account's tag of its key: checked as a create is, nothing written.
#[tracing::instrument(skip(ctx, fields, query))]
pub async fn preview(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
    fields: TagFields,
    mut query: CostQuery,
) -> Result<(VirtualTagDefinition, CostsAnswer)> {
    let draft = parsed(fields)?;
    check_metrics(ctx.store.as_ref(), account, &draft).await?;
    query.groupings = vec![Grouping::Tag(draft.key.clone())];
    let answer = super::costs::costs_with_draft(ctx, account, workspace, &query, &draft).await?;
    Ok((draft, answer))
}

/// Replaces the fields sent (`values`, when sent, replaces the whole list; a value sent with its token
/// keeps it).
#[tracing::instrument(skip(store, fields))]
pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    fields: TagFields,
) -> Result<VirtualTag> {
    let (tag, ()) =
        rewrite(store, account, token, |current| Ok((parsed(fields.clone().over(TagFields::from(current)))?, ())))
            .await?;
    Ok(tag)
}

/// Vantage's asynchronous update (`PUT …/{token}/async`): applied before it answers, as a query computes
/// virtual tags when it runs and nothing is left to process; the request id names the tag and the version
/// this update wrote (`<token>-<version>`), so any node can answer for it without keeping anything.
#[tracing::instrument(skip(store, fields))]
pub async fn update_async(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    fields: TagFields,
) -> Result<String> {
    let (stored, ()) = rewrite_stored(store, account, token, |current| {
        Ok((parsed(fields.clone().over(TagFields::from(current)))?, ()))
    })
    .await?;
    Ok(format!("{token}-{}", stored.version))
}

/// The tag an asynchronous update's request id names, once that update is applied (always, by the time its
/// id exists); not found for an id this account never got or a tag deleted since.
pub async fn async_update(store: &dyn Store, account: &AccountToken, request_id: &str) -> Result<VirtualTag> {
    let not_found = || ServiceError::NotFound("async virtual tag config update");
    let (token, version) = request_id.rsplit_once('-').ok_or_else(not_found)?;
    let token = VirtualTagToken::parse(token).ok_or_else(not_found)?;
    let version: i64 = version.parse().map_err(|_| not_found())?;
    let stored = store.get_virtual_tag(account, &token).await?.ok_or_else(not_found)?;
    if stored.version < version {
        return Err(not_found());
    }
    Ok(stored.tag)
}

#[tracing::instrument(skip(store))]
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &VirtualTagToken) -> Result<()> {
    if store.delete_virtual_tag(account, token).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// Adds a value after the others (the lowest precedence).
#[tracing::instrument(skip(store, fields))]
pub async fn add_value(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    fields: ValueFields,
) -> Result<TagValue> {
    let (_, value) = rewrite(store, account, token, |current| {
        if current.values.len() >= MAX_VALUES {
            return Err(ServiceError::Unprocessable(vec![format!(
                "a virtual tag config may have at most {MAX_VALUES} values"
            )]));
        }
        let mut errors = Vec::new();
        let fields = ValueFields { token: None, ..fields.clone() };
        let value = parse_value("value", fields, &mut errors).filter(|_| errors.is_empty());
        let value = value.ok_or(ServiceError::Invalid(errors))?;
        let mut definition = current.clone();
        definition.values.push(value.clone());
        Ok((definition, value))
    })
    .await?;
    Ok(value)
}

pub async fn get_value(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    value: &VirtualTagValueToken,
) -> Result<TagValue> {
    let tag = get(store, account, token).await?;
    tag.definition.values.into_iter().find(|v| &v.token == value).ok_or_else(value_not_found)
}

/// Changes the fields sent of one value, keeping its place.
#[tracing::instrument(skip(store, fields))]
pub async fn update_value(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    value: &VirtualTagValueToken,
    fields: ValueFields,
) -> Result<TagValue> {
    let (_, changed) = rewrite(store, account, token, |current| {
        let at = current.values.iter().position(|v| &v.token == value).ok_or_else(value_not_found)?;
        let mut errors = Vec::new();
        let merged = ValueFields { token: None, ..fields.clone() }.over(ValueFields::from(&current.values[at]));
        let parsed = parse_value("value", merged, &mut errors).filter(|_| errors.is_empty());
        let parsed = parsed.ok_or(ServiceError::Invalid(errors))?;
        let mut definition = current.clone();
        definition.values[at] = parsed.clone();
        Ok((definition, parsed))
    })
    .await?;
    Ok(changed)
}

#[tracing::instrument(skip(store))]
pub async fn delete_value(
    store: &dyn Store,
    account: &AccountToken,
    token: &VirtualTagToken,
    value: &VirtualTagValueToken,
) -> Result<()> {
    rewrite(store, account, token, |current| {
        let mut definition = current.clone();
        let before = definition.values.len();
        definition.values.retain(|v| &v.token != value);
        if definition.values.len() == before {
            return Err(value_not_found());
        }
        Ok((definition, ()))
    })
    .await?;
    Ok(())
}

/// The tags a costs query of `account` applies: for a managed account, its MSP's (`parent`) and its own,
/// its own winning where both define a key; the MSP's first, each account's oldest first.
pub async fn applied(
    store: &dyn Store,
    account: &AccountToken,
    parent: Option<&AccountToken>,
) -> Result<Vec<VirtualTagDefinition>> {
    let accounts: Vec<AccountToken> = parent.into_iter().cloned().chain([account.clone()]).collect();
    let tags = store.list_virtual_tags(&accounts).await?;
    let own: Vec<&str> =
        tags.iter().filter(|t| &t.tag.account_token == account).map(|t| t.tag.definition.key.as_str()).collect();
    Ok(tags
        .iter()
        .filter(|t| &t.tag.account_token == account || !own.contains(&t.tag.definition.key.as_str()))
        .map(|t| t.tag.definition.clone())
        .collect())
}
