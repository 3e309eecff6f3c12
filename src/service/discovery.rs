//! Discovery: which providers, services, tag keys and tag values a caller's costs hold, so they know what
//! to filter and group by. Read from what each upload recorded when it was committed
//! (`engine::discovery`), over the caller's view: a managed account sees its integrations' uploads, a
//! workspace its integrations'. Tags and providers are the costs as uploaded; services are what the
//! caller's costs show: for a managed account whose billing rules may rename, hide or add services, the
//! names its costs query answers with (never a name its rules hid from it).

use crate::service::ServiceError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::engine::uploads::UploadFiles;
use crate::model::cost_query::{Aggregate, CostQuery, DateBin, Settings};
use crate::model::token::{AccountToken, BusinessMetricToken, IntegrationToken};
use crate::model::virtual_tag::{Assign, Basis};
use crate::service::costs::{costs, view_of, CostsContext};
use crate::store::Store;

/// The provider key of a custom-provider integration's costs, as VQL's `costs.provider` and Vantage's tag
/// lists name one.
pub fn provider_key(integration: &IntegrationToken) -> String {
    format!("custom_provider:{integration}")
}

/// The distinct rows of one kind in the caller's view: (integration, name, value).
async fn dimensions(
    store: &dyn Store,
    account: &AccountToken,
    workspace: Option<&str>,
    kind: &str,
    name: Option<&str>,
) -> Result<Vec<(IntegrationToken, String, String)>, ServiceError> {
    let view = view_of(store, account, workspace).await?;
    let rows = store.upload_dimensions(&view.owner, kind, name).await?;
    Ok(rows.into_iter().filter(|(i, _, _)| view.integrations.contains(i)).collect())
}

/// `GET /v2/cost_providers`: the providers with costs in the view (costd's are all custom providers).
pub async fn providers(
    store: &dyn Store,
    account: &AccountToken,
    workspace: Option<&str>,
) -> Result<Vec<(&'static str, &'static str)>, ServiceError> {
    let any = !dimensions(store, account, workspace, "service", None).await?.is_empty();
    Ok(if any { vec![("Custom Provider", "custom_provider")] } else { Vec::new() })
}

/// `GET /v2/cost_services`: each service once, by name.
pub async fn services(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
) -> Result<Vec<String>, ServiceError> {
    let store = ctx.store.as_ref();
    let view = view_of(store, account, workspace).await?;
    if view.rules.is_empty() {
        let names: BTreeSet<String> =
            dimensions(store, account, workspace, "service", None).await?.into_iter().map(|(_, n, _)| n).collect();
        return Ok(names.into_iter().collect());
    }
    // Rules shape what this account sees (an UPDATE may rename a service, an exclusion or an UPDATE hide
    // one, a charge add one): the names are those of its costs, over every day its uploads cover, every
    // kind of cost shown. Through the result cache, so asking again is free until something changes.
    let uploads = store.live_uploads(&view.owner, &view.integrations).await?;
    let (Some(start), Some(end)) =
        (uploads.iter().map(|u| u.start_date).min(), uploads.iter().map(|u| u.end_date).max())
    else {
        return Ok(Vec::new());
    };
    let query = CostQuery {
        start,
        end,
        groupings: vec![crate::model::cost_query::ColumnGrouping::Service.into()],
        date_bin: DateBin::Quarter,
        descending: false,
        settings: Settings {
            include_credits: true,
            include_refunds: true,
            include_discounts: true,
            include_tax: true,
            amortize: false,
        },
        aggregate: Aggregate::Cost,
        filter: None,
        segment: None,
    };
    let answer = costs(ctx, account, workspace, &query).await?;
    let names: BTreeSet<String> = answer.result.rows.iter().map(|r| r.dimension(0)).filter(|n| !n.is_empty()).collect();
    Ok(names.into_iter().collect())
}

/// A tag key or value with the providers (integrations) whose costs carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub providers: Vec<String>,
    /// A key marked hidden or preferred: a virtual tag's in its definition, a provider key's by
    /// `PUT /v2/tags` ([`update_tags`]).
    pub hidden: bool,
    pub preferred: bool,
}

/// Which tag keys or values to list and in what order.
#[derive(Debug, Clone, Default)]
pub struct TagQuery {
    /// Provider keys (`custom_provider` for all, or `custom_provider:<integration>`); empty: all.
    pub providers: Vec<String>,
    /// Case-insensitive substring of the key (or value).
    pub search: Option<String>,
    pub descending: bool,
}

fn matches(query: &TagQuery, integration: &IntegrationToken, text: &str) -> bool {
    let provider_ok = query.providers.is_empty()
        || query.providers.iter().any(|p| p == "custom_provider" || *p == provider_key(integration));
    let search_ok = query.search.as_ref().is_none_or(|s| text.to_lowercase().contains(&s.to_lowercase()));
    provider_ok && search_ok
}

fn collect(entries: impl Iterator<Item = (IntegrationToken, String)>, descending: bool) -> Vec<Found> {
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (integration, name) in entries {
        by_name.entry(name).or_default().insert(provider_key(&integration));
    }
    let mut found: Vec<Found> = by_name
        .into_iter()
        .map(|(name, p)| Found { name, providers: p.into_iter().collect(), hidden: false, preferred: false })
        .collect();
    if descending {
        found.reverse();
    }
    found
}

/// `GET /v2/tags`: the tag keys, sorted by key: the providers' and the virtual tags' (which every
/// integration in the view carries, as a query computes them over all its costs).
pub async fn tag_keys(
    store: &dyn Store,
    account: &AccountToken,
    workspace: Option<&str>,
    query: &TagQuery,
) -> Result<Vec<Found>, ServiceError> {
    let view = view_of(store, account, workspace).await?;
    let rows = store.upload_dimensions(&view.owner, "tag", None).await?;
    let provided = rows.into_iter().filter(|(i, _, _)| view.integrations.contains(i)).map(|(i, key, _)| (i, key));
    let virtual_keys =
        view.virtual_tags.iter().flat_map(|t| view.integrations.iter().map(|i| (i.clone(), t.key.clone())));
    let mut found = collect(provided.chain(virtual_keys).filter(|(i, key)| matches(query, i, key)), query.descending);
    // The account's own virtual tag's flags, else its setting of the key, else its MSP's virtual tag's.
    let own = super::virtual_tags::list(store, account, None).await?;
    let settings = store.tag_settings(account).await?;
    for f in &mut found {
        let own_tag =
            own.iter().find(|t| t.definition.key == f.name).map(|t| (t.definition.hidden, t.definition.preferred));
        let setting = settings.iter().find(|(k, _, _)| *k == f.name).map(|(_, h, p)| (*h, *p));
        let inherited = view.virtual_tags.iter().find(|t| t.key == f.name).map(|t| (t.hidden, t.preferred));
        (f.hidden, f.preferred) = own_tag.or(setting).or(inherited).unwrap_or((false, false));
    }
    Ok(found)
}

/// What `PUT /v2/tags` changes: the keys (`tag_key`, `tag_keys`) and the flags sent.
#[derive(Debug, Clone, Default)]
pub struct TagUpdate {
    pub keys: Vec<String>,
    pub hidden: Option<bool>,
    pub preferred: Option<bool>,
}

/// `PUT /v2/tags`: marks keys hidden or preferred; answers them as `GET /v2/tags` lists them. A key of one of
/// the account's virtual tags changes in the tag's definition, any other key in the account's settings. A
/// key no cost in the caller's view carries (and no virtual tag) is a 404, and nothing is changed.
pub async fn update_tags(
    store: &dyn Store,
    account: &AccountToken,
    update: TagUpdate,
) -> Result<Vec<Found>, ServiceError> {
    // Keys as sent: a provider's key may have spaces at its ends.
    let mut keys: Vec<String> = update.keys.into_iter().filter(|k| !k.is_empty()).collect();
    keys.dedup();
    if keys.is_empty() {
        return Err(ServiceError::invalid("tag_key or tag_keys is required"));
    }
    if update.hidden.is_none() && update.preferred.is_none() {
        return Err(ServiceError::invalid("send hidden or preferred (or both)"));
    }
    let known = tag_keys(store, account, None, &TagQuery::default()).await?;
    if keys.iter().any(|k| !known.iter().any(|f| &f.name == k)) {
        return Err(ServiceError::NotFound("tag key"));
    }
    let own = super::virtual_tags::list(store, account, None).await?;
    let mut settings = Vec::new();
    for key in &keys {
        match own.iter().find(|t| &t.definition.key == key) {
            Some(tag) => {
                let fields = crate::model::virtual_tag::TagFields {
                    hidden: update.hidden,
                    preferred: update.preferred,
                    ..Default::default()
                };
                super::virtual_tags::update(store, account, &tag.token, fields).await?;
            }
            None => settings.push(key.clone()),
        }
    }
    if !settings.is_empty() {
        store.put_tag_settings(account, &settings, update.hidden, update.preferred).await?;
    }
    let listed = tag_keys(store, account, None, &TagQuery::default()).await?;
    Ok(listed.into_iter().filter(|f| keys.contains(&f.name)).collect())
}

/// `GET /v2/tags/{key}/values`: the values of one key, sorted; `None` when no cost in the view has the key.
pub async fn tag_values(
    store: &dyn Store,
    account: &AccountToken,
    workspace: Option<&str>,
    key: &str,
    query: &TagQuery,
) -> Result<Option<Vec<Found>>, ServiceError> {
    let view = view_of(store, account, workspace).await?;
    let rows = store.upload_dimensions(&view.owner, "tag", Some(key)).await?;
    let rows: Vec<_> = rows.into_iter().filter(|(i, _, _)| view.integrations.contains(i)).collect();
    // A virtual tag's values are its names (and its shares'), which any integration's costs may get, and
    // the provider's values of its key, which a cost no value matches keeps. A proportional split's shares
    // are named by its basis: the provider's values of the basis tag, or the metric's labels.
    let mut virtual_names: Vec<String> = Vec::new();
    for tag in view.virtual_tags.iter().filter(|t| t.key == key) {
        for value in &tag.values {
            virtual_names.extend(value.assign.names());
            match &value.assign {
                Assign::Proportional { basis: Basis::Costs { tag: basis, .. }, .. } => {
                    let provided = store.upload_dimensions(&view.owner, "tag", Some(basis)).await?;
                    virtual_names.extend(
                        provided.into_iter().filter(|(i, _, _)| view.integrations.contains(i)).map(|(_, _, v)| v),
                    );
                }
                Assign::Proportional { basis: Basis::Metric { token, labels, transforms, .. }, .. } => {
                    let Some(token) = BusinessMetricToken::parse(token) else { continue };
                    for owner in std::iter::once(account).chain(view.parent.as_ref()) {
                        if let Some(found) = store.metric_labels(owner, &token).await? {
                            virtual_names.extend(
                                found
                                    .into_iter()
                                    .filter(|l| labels.is_empty() || labels.contains(l))
                                    .map(|l| crate::model::virtual_tag::transformed(transforms, &l)),
                            );
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if rows.is_empty() && !view.virtual_tags.iter().any(|t| t.key == key) {
        return Ok(None);
    }
    let named = virtual_names.iter().flat_map(|n| view.integrations.iter().map(|i| (i.clone(), n.clone())));
    Ok(Some(collect(
        rows.into_iter().map(|(i, _, value)| (i, value)).chain(named).filter(|(i, value)| matches(query, i, value)),
        query.descending,
    )))
}

/// Records the catalog of every upload committed before discovery existed (run once at start-up; an
/// upload whose file is gone is skipped, as the janitor will forget it).
pub async fn backfill(store: &dyn Store, files: &Arc<UploadFiles>) -> anyhow::Result<usize> {
    let mut done = 0;
    for token in store.uploads_without_dimensions().await? {
        if !files.storage().exists(&token).await.unwrap_or(false) {
            continue;
        }
        match files.storage().catalog(&token).await {
            Ok(catalog) => {
                store.add_upload_dimensions(&token, &catalog).await?;
                done += 1;
            }
            // Retired and removed meanwhile, or unreadable: discovery goes without it, and says so.
            Err(e) => tracing::warn!(upload = %token, error = %e, "could not read an upload for discovery"),
        }
    }
    if done > 0 {
        tracing::info!(uploads = done, "recorded the discovery catalog of earlier uploads");
    }
    Ok(done)
}
