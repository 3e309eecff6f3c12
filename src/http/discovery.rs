//! Discovery: `GET /v2/cost_providers`, `/v2/cost_services`, `/v2/tags` and `/v2/tags/{key}/values`: what
//! the caller's costs hold, to filter and group by (see [`crate::service::discovery`]).

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::pagination::{Links, ListUrl, DEFAULT_LIMIT, MAX_LIMIT};
use super::{ApiError, AppState, Result};
use crate::service::discovery::{self, TagQuery};
use crate::store::PageRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(services))
        .routes(routes!(tags, update_tags))
        .routes(routes!(tag_values))
}

/// The query string of a discovery list, checked; every problem listed.
struct Params {
    workspace: Option<String>,
    query: TagQuery,
    page: PageRequest,
}

fn params(raw: &str, tag_params: bool) -> Result<Params> {
    let mut errors = Vec::new();
    let mut p =
        Params { workspace: None, query: TagQuery::default(), page: PageRequest { page: 1, limit: DEFAULT_LIMIT } };
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let v = value.trim();
        match key.as_ref() {
            "workspace_token" if !v.is_empty() => p.workspace = Some(v.to_string()),
            "workspace_token" => {}
            "providers" | "providers[]" if tag_params => {
                p.query.providers.extend(v.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string))
            }
            "search_query" if tag_params => p.query.search = Some(v.to_string()).filter(|v| !v.is_empty()),
            "sort_direction" if tag_params => match v {
                "asc" => p.query.descending = false,
                "desc" => p.query.descending = true,
                _ => errors.push(format!("sort_direction must be asc or desc, got {v:?}")),
            },
            "page" if tag_params => match v.parse::<u32>() {
                Ok(n) if n >= 1 => p.page.page = n,
                _ => errors.push(format!("page must be a whole number from 1, got {v:?}")),
            },
            "limit" if tag_params => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => p.page.limit = n,
                _ => errors.push(format!("limit must be between 1 and {MAX_LIMIT}, got {v:?}")),
            },
            other => errors.push(format!("{other}: unknown parameter")),
        }
    }
    for provider in &p.query.providers {
        if provider != "custom_provider" && !provider.starts_with("custom_provider:") {
            errors.push(format!(
                "providers: costd holds custom-provider costs only (custom_provider or custom_provider:<integration>), got {provider:?}"
            ));
        }
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Provider {
    name: &'static str,
    key: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ProvidersBody {
    cost_providers: Vec<Provider>,
    links: Links,
}

#[utoipa::path(get, path = "/cost_providers", tag = "discovery", operation_id = "discovery_providers", responses((status = 200, description = "OK", body = ProvidersBody), super::openapi::ApiErrors))]
async fn providers(State(state): State<AppState>, caller: Caller, url: ListUrl) -> Result<axum::Json<ProvidersBody>> {
    let p = params(url.query(), false)?;
    let found = discovery::providers(state.store.as_ref(), &caller.account_token, p.workspace.as_deref()).await?;
    let page = PageRequest { page: 1, limit: (found.len() as u32).max(1) };
    let links = url.links(page, found.len() as i64);
    Ok(axum::Json(ProvidersBody {
        cost_providers: found.into_iter().map(|(name, key)| Provider { name, key }).collect(),
        links,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Service {
    name: String,
    provider: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ServicesBody {
    cost_services: Vec<Service>,
    links: Links,
}

#[utoipa::path(get, path = "/cost_services", tag = "discovery", operation_id = "discovery_services", responses((status = 200, description = "OK", body = ServicesBody), super::openapi::ApiErrors))]
async fn services(State(state): State<AppState>, caller: Caller, url: ListUrl) -> Result<axum::Json<ServicesBody>> {
    let p = params(url.query(), false)?;
    let found = discovery::services(&state.costs_context(), &caller.account_token, p.workspace.as_deref()).await?;
    let page = PageRequest { page: 1, limit: (found.len() as u32).max(1) };
    let links = url.links(page, found.len() as i64);
    Ok(axum::Json(ServicesBody {
        cost_services: found.into_iter().map(|name| Service { name, provider: "custom_provider" }).collect(),
        links,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Tag {
    tag_key: String,
    hidden: bool,
    preferred: bool,
    providers: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TagsBody {
    tags: Vec<Tag>,
    links: Links,
}

#[utoipa::path(get, path = "/tags", tag = "discovery", operation_id = "discovery_tags", responses((status = 200, description = "OK", body = TagsBody), super::openapi::ApiErrors))]
async fn tags(State(state): State<AppState>, caller: Caller, url: ListUrl) -> Result<axum::Json<TagsBody>> {
    let p = params(url.query(), true)?;
    let found =
        discovery::tag_keys(state.store.as_ref(), &caller.account_token, p.workspace.as_deref(), &p.query).await?;
    let (found, links) = url.slice(p.page, found);
    let tags = found
        .into_iter()
        .map(|f| Tag { tag_key: f.name, hidden: f.hidden, preferred: f.preferred, providers: f.providers })
        .collect();
    Ok(axum::Json(TagsBody { tags, links }))
}

/// `PUT /v2/tags`: one key (`tag_key`) or several (`tag_keys`), and the flags to set.
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct UpdateTagsFields {
    tag_key: Option<String>,
    tag_keys: Option<Vec<String>>,
    hidden: Option<bool>,
    preferred: Option<bool>,
}

#[utoipa::path(put, path = "/tags", tag = "discovery", operation_id = "discovery_update_tags", request_body = UpdateTagsFields, responses((status = 200, description = "OK", body = TagsBody), super::openapi::ApiErrors))]
async fn update_tags(
    State(state): State<AppState>,
    caller: Caller,
    url: ListUrl,
    super::extract::Json(fields): super::extract::Json<UpdateTagsFields>,
) -> Result<axum::Json<TagsBody>> {
    let keys = fields.tag_key.into_iter().chain(fields.tag_keys.unwrap_or_default()).collect();
    let update = discovery::TagUpdate { keys, hidden: fields.hidden, preferred: fields.preferred };
    let found = discovery::update_tags(state.store.as_ref(), &caller.account_token, update).await?;
    let page = PageRequest { page: 1, limit: (found.len() as u32).max(1) };
    let links = url.links(page, found.len() as i64);
    let tags = found
        .into_iter()
        .map(|f| Tag { tag_key: f.name, hidden: f.hidden, preferred: f.preferred, providers: f.providers })
        .collect();
    Ok(axum::Json(TagsBody { tags, links }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct TagValue {
    tag_value: String,
    providers: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TagValuesBody {
    tag_values: Vec<TagValue>,
    links: Links,
}

#[utoipa::path(get, path = "/tags/{key}/values", tag = "discovery", operation_id = "discovery_tag_values", params(("key" = String, Path)), responses((status = 200, description = "OK", body = TagValuesBody), super::openapi::ApiErrors))]
async fn tag_values(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    url: ListUrl,
) -> Result<axum::Json<TagValuesBody>> {
    let p = params(url.query(), true)?;
    let found =
        discovery::tag_values(state.store.as_ref(), &caller.account_token, p.workspace.as_deref(), &key, &p.query)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no costs carry the tag {key:?}")))?;
    let (found, links) = url.slice(p.page, found);
    let tag_values = found.into_iter().map(|f| TagValue { tag_value: f.name, providers: f.providers }).collect();
    Ok(axum::Json(TagValuesBody { tag_values, links }))
}
