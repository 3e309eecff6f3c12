//! Cost reports, saved filters and folders: where each belongs (its workspace, folder and saved filters,
//! all checked to be the caller's and to agree), and the costs query a report stands for.
//!
//! A report's query is its own filter ANDed with its saved filters' and its folder's saved filters', over
//! its groupings, settings and dates; `GET /v2/costs?cost_report_token=` starts from it.

use crate::service::ServiceError;
use chrono::NaiveDate;

use crate::model::business_metric::{parse_report_metrics, Attachment};
use crate::model::cost_query::Defaults;
use crate::model::report::{
    filter_field, folder_type, title, CostReportFields, FolderFields, ReportDefinition, SavedFilterDefinition,
    SavedFilterFields, ViewKind,
};
use crate::model::token::{AccountToken, BusinessMetricToken};
use crate::model::vql::Filter;
use crate::store::{PageRequest, Paged, ReportObject, ReportObjectFields, Store};

type Result<T> = std::result::Result<T, ServiceError>;

fn stored<T: serde::de::DeserializeOwned>(object: &ReportObject) -> Result<T> {
    serde_json::from_str(&object.definition).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!(
            "{} {} has an unreadable definition: {e}",
            object.kind.noun(),
            object.token
        ))
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// A cost report with its definition read.
pub fn report_definition(report: &ReportObject) -> Result<ReportDefinition> {
    stored(report)
}

pub fn saved_filter_definition(filter: &ReportObject) -> Result<SavedFilterDefinition> {
    stored(filter)
}

/// A page of the account's report objects of one kind that `filter` keeps.
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    kind: ViewKind,
    filter: &crate::model::report::ReportObjectFilter,
    page: PageRequest,
) -> Result<Paged<ReportObject>> {
    Ok(store.list_report_objects(account, kind, filter, page).await?)
}

pub async fn get(store: &dyn Store, account: &AccountToken, kind: ViewKind, token: &str) -> Result<ReportObject> {
    if !token.starts_with(kind.prefix()) {
        return Err(ServiceError::NotFound(kind.noun()));
    }
    store.get_report_object(account, kind, token).await?.ok_or(ServiceError::NotFound(kind.noun()))
}

/// Text that names nothing (`""`), as a way to clear a reference, is `Some(None)`.
fn reference(value: Option<&String>) -> Option<Option<&str>> {
    value.map(|v| Some(v.trim()).filter(|v| !v.is_empty()))
}

/// Where a new object goes and what it refers to, checked together.
struct Placement {
    workspace_token: String,
    folder_token: Option<String>,
    saved_filter_tokens: Vec<String>,
}

/// The workspace a new object goes to: the one named (checked to be the account's), else `current`, else
/// the account's only one; `None` with the problem listed.
pub(crate) async fn workspace(
    store: &dyn Store,
    account: &AccountToken,
    given: Option<&str>,
    current: Option<&str>,
    errors: &mut Vec<String>,
) -> Result<Option<String>> {
    Ok(match (given, current) {
        (Some(w), _) => match store.get_workspace(account, w).await? {
            Some(_) => Some(w.to_string()),
            None => {
                errors.push(format!("workspace_token: no workspace {w} in this account"));
                None
            }
        },
        (None, Some(w)) => Some(w.to_string()),
        (None, None) => {
            let all = store.list_workspaces(account, crate::store::PageRequest { page: 1, limit: 2 }, None).await?;
            match all.items.as_slice() {
                [only] => Some(only.token.clone()),
                _ => {
                    errors.push("workspace_token is required: this account has several workspaces; name one".into());
                    None
                }
            }
        }
    })
}

/// Resolves the workspace (the folder's, the one named, or the account's only one), the folder and the
/// saved filters, listing every problem.
#[allow(clippy::too_many_arguments)]
async fn place(
    store: &dyn Store,
    account: &AccountToken,
    workspace_given: Option<&str>,
    current_workspace: Option<&str>,
    folder: Option<&str>,
    folder_field: &str,
    saved_filters: &[String],
    errors: &mut Vec<String>,
) -> Result<Placement> {
    let folder = match folder {
        Some(token) => match store.get_report_object(account, ViewKind::Folder, token).await? {
            Some(f) => Some(f),
            None => {
                errors.push(format!("{folder_field}: no folder {token} in this account"));
                None
            }
        },
        None => None,
    };
    let workspace_given = workspace_given.map(str::trim).filter(|w| !w.is_empty());
    let workspace = match (&folder, workspace_given) {
        (Some(f), Some(w)) if w != f.workspace_token => {
            errors.push(format!(
                "workspace_token: the folder {} is in workspace {}; leave workspace_token out or pass that one",
                f.token, f.workspace_token
            ));
            None
        }
        (Some(f), _) => Some(f.workspace_token.clone()),
        (None, given) => workspace(store, account, given, current_workspace, errors).await?,
    };
    let mut filters: Vec<String> = Vec::new();
    for token in saved_filters.iter().map(|t| t.trim()) {
        if filters.iter().any(|t| t == token) {
            continue;
        }
        match store.get_report_object(account, ViewKind::SavedFilter, token).await? {
            None => errors.push(format!("saved_filter_tokens: no saved filter {token} in this account")),
            Some(f) if workspace.as_deref().is_some_and(|w| w != f.workspace_token) => errors.push(format!(
                "saved_filter_tokens: the saved filter {token} is in workspace {}, not {}",
                f.workspace_token,
                workspace.as_deref().unwrap_or_default()
            )),
            Some(_) => filters.push(token.to_string()),
        }
    }
    Ok(Placement {
        workspace_token: workspace.unwrap_or_default(),
        folder_token: folder.map(|f| f.token),
        saved_filter_tokens: filters,
    })
}

fn done<T>(errors: Vec<String>, value: T) -> Result<T> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

pub async fn create_folder(store: &dyn Store, account: &AccountToken, fields: FolderFields) -> Result<ReportObject> {
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), None, &mut errors);
    folder_type(fields.kind.as_deref(), &mut errors);
    let parent = reference(fields.parent_folder_token.as_ref()).flatten();
    let filters = fields.saved_filter_tokens.unwrap_or_default();
    let place = place(
        store,
        account,
        fields.workspace_token.as_deref(),
        None,
        parent,
        "parent_folder_token",
        &filters,
        &mut errors,
    )
    .await?;
    done(errors, ())?;
    Ok(store
        .create_report_object(
            account,
            ViewKind::Folder,
            &ReportObjectFields {
                workspace_token: place.workspace_token,
                folder_token: place.folder_token,
                title,
                definition: "{}".into(),
                saved_filter_tokens: place.saved_filter_tokens,
            },
        )
        .await?)
}

pub async fn update_folder(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: FolderFields,
) -> Result<ReportObject> {
    let current = get(store, account, ViewKind::Folder, token).await?;
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.is_some() || fields.kind.is_some() {
        errors
            .push("workspace_token and type are set when a folder is created; move it with parent_folder_token".into());
    }
    let parent = match reference(fields.parent_folder_token.as_ref()) {
        Some(p) => p.map(str::to_string),
        None => current.folder_token.clone(),
    };
    // A folder may not go inside itself, directly or further down.
    let mut step = parent.clone();
    while let Some(p) = step {
        if p == current.token {
            errors.push("parent_folder_token: a folder cannot be inside itself".into());
            break;
        }
        step = store.get_report_object(account, ViewKind::Folder, &p).await?.and_then(|f| f.folder_token);
    }
    let filters = fields.saved_filter_tokens.unwrap_or_else(|| current.saved_filter_tokens.clone());
    let place = place(
        store,
        account,
        None,
        Some(&current.workspace_token),
        parent.as_deref(),
        "parent_folder_token",
        &filters,
        &mut errors,
    )
    .await?;
    if place.workspace_token != current.workspace_token && errors.is_empty() {
        errors.push("parent_folder_token: the parent is in another workspace; folders stay in their workspace".into());
    }
    done(errors, ())?;
    let fields = ReportObjectFields {
        workspace_token: current.workspace_token,
        folder_token: place.folder_token,
        title,
        definition: current.definition,
        saved_filter_tokens: place.saved_filter_tokens,
    };
    store.update_report_object(account, ViewKind::Folder, token, &fields).await?.ok_or(ServiceError::NotFound("folder"))
}

pub async fn create_saved_filter(
    store: &dyn Store,
    account: &AccountToken,
    created_by: Option<String>,
    fields: SavedFilterFields,
) -> Result<ReportObject> {
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), None, &mut errors);
    let filter = filter_field("filter", fields.filter.as_deref(), &mut errors);
    let place = place(store, account, fields.workspace_token.as_deref(), None, None, "", &[], &mut errors).await?;
    done(errors, ())?;
    let definition = SavedFilterDefinition { filter, created_by };
    Ok(store
        .create_report_object(
            account,
            ViewKind::SavedFilter,
            &ReportObjectFields {
                workspace_token: place.workspace_token,
                folder_token: None,
                title,
                definition: json(&definition),
                saved_filter_tokens: Vec::new(),
            },
        )
        .await?)
}

pub async fn update_saved_filter(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: SavedFilterFields,
) -> Result<ReportObject> {
    let current = get(store, account, ViewKind::SavedFilter, token).await?;
    let mut definition = saved_filter_definition(&current)?;
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.is_some() {
        errors.push("workspace_token is set when a saved filter is created".into());
    }
    if let Some(f) = &fields.filter {
        definition.filter = filter_field("filter", Some(f), &mut errors);
    }
    done(errors, ())?;
    let fields = ReportObjectFields {
        workspace_token: current.workspace_token,
        folder_token: None,
        title,
        definition: json(&definition),
        saved_filter_tokens: Vec::new(),
    };
    store
        .update_report_object(account, ViewKind::SavedFilter, token, &fields)
        .await?
        .ok_or(ServiceError::NotFound("saved filter"))
}

/// The report's `business_metric_tokens_with_metadata`, checked (each metric the account's), for `report`.
async fn report_metrics(
    store: &dyn Store,
    account: &AccountToken,
    report: &str,
    fields: &CostReportFields,
    errors: &mut Vec<String>,
) -> Result<Option<Vec<(BusinessMetricToken, Attachment)>>> {
    let Some(list) = fields.business_metric_tokens_with_metadata.clone() else { return Ok(None) };
    let parsed = match parse_report_metrics(report, list) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.extend(e);
            return Ok(None);
        }
    };
    let mut out = Vec::new();
    for (i, (token, attachment)) in parsed.into_iter().enumerate() {
        let token = BusinessMetricToken::parse(&token).expect("checked by the parser");
        if store.get_business_metric(account, &token).await?.is_none() {
            errors.push(format!(
                "business_metric_tokens_with_metadata[{i}].business_metric_token: {token} is not a business metric \
                 of this account"
            ));
        }
        out.push((token, attachment));
    }
    Ok(Some(out))
}

/// Attaches `metrics` to the report (when the request named them).
async fn attach_metrics(
    store: &dyn Store,
    account: &AccountToken,
    report: &str,
    metrics: Option<Vec<(BusinessMetricToken, Attachment)>>,
) -> Result<()> {
    let Some(mut metrics) = metrics else { return Ok(()) };
    for (_, a) in &mut metrics {
        a.cost_report_token = report.to_string();
    }
    match store.set_report_metrics(account, report, &metrics).await? {
        None => Ok(()),
        // Deleted since it was checked.
        Some(token) => Err(ServiceError::invalid(format!(
            "business_metric_tokens_with_metadata: {token} is not a business metric of this account"
        ))),
    }
}

pub async fn create_report(
    store: &dyn Store,
    account: &AccountToken,
    fields: CostReportFields,
) -> Result<ReportObject> {
    let mut errors = Vec::new();
    let metrics = report_metrics(store, account, "", &fields, &mut errors).await?;
    let title = title(fields.title.as_deref(), None, &mut errors);
    let definition = ReportDefinition::overlay(&ReportDefinition::default(), &fields).unwrap_or_else(|e| {
        errors.extend(e);
        ReportDefinition::default()
    });
    let folder = reference(fields.folder_token.as_ref()).flatten();
    let filters = fields.saved_filter_tokens.clone().unwrap_or_default();
    let place =
        place(store, account, fields.workspace_token.as_deref(), None, folder, "folder_token", &filters, &mut errors)
            .await?;
    done(errors, ())?;
    let report = store
        .create_report_object(
            account,
            ViewKind::CostReport,
            &ReportObjectFields {
                workspace_token: place.workspace_token,
                folder_token: place.folder_token,
                title,
                definition: json(&definition),
                saved_filter_tokens: place.saved_filter_tokens,
            },
        )
        .await?;
    attach_metrics(store, account, &report.token, metrics).await?;
    Ok(report)
}

pub async fn update_report(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: CostReportFields,
) -> Result<ReportObject> {
    let current = get(store, account, ViewKind::CostReport, token).await?;
    generated_by_segment(&current)?;
    let mut errors = Vec::new();
    let metrics = report_metrics(store, account, token, &fields, &mut errors).await?;
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.is_some() {
        errors.push("workspace_token is set when a report is created; move it with folder_token".into());
    }
    let definition = ReportDefinition::overlay(&report_definition(&current)?, &fields).unwrap_or_else(|e| {
        errors.extend(e);
        ReportDefinition::default()
    });
    let folder = match reference(fields.folder_token.as_ref()) {
        Some(f) => f.map(str::to_string),
        None => current.folder_token.clone(),
    };
    let filters = fields.saved_filter_tokens.clone().unwrap_or_else(|| current.saved_filter_tokens.clone());
    // A folder decides the workspace; out of any folder, the report stays where it is.
    let place = place(
        store,
        account,
        None,
        Some(&current.workspace_token),
        folder.as_deref(),
        "folder_token",
        &filters,
        &mut errors,
    )
    .await?;
    done(errors, ())?;
    let fields = ReportObjectFields {
        workspace_token: place.workspace_token,
        folder_token: place.folder_token,
        title,
        definition: json(&definition),
        saved_filter_tokens: place.saved_filter_tokens,
    };
    let report = store
        .update_report_object(account, ViewKind::CostReport, token, &fields)
        .await?
        .ok_or(ServiceError::NotFound("cost report"))?;
    attach_metrics(store, account, token, metrics).await?;
    Ok(report)
}

/// The business metrics attached to each of `reports` (by report token), as the reports show them.
pub async fn metrics_of(
    store: &dyn Store,
    account: &AccountToken,
) -> Result<std::collections::HashMap<String, Vec<(BusinessMetricToken, Attachment)>>> {
    let mut by_report: std::collections::HashMap<String, Vec<(BusinessMetricToken, Attachment)>> = Default::default();
    for metric in store.list_business_metrics(account).await? {
        for a in metric.attachments {
            by_report.entry(a.cost_report_token.clone()).or_default().push((metric.token.clone(), a));
        }
    }
    Ok(by_report)
}

/// A report a segment generated is changed and deleted through the segment only.
fn generated_by_segment(report: &ReportObject) -> Result<()> {
    match report_definition(report)?.segment_token {
        Some(segment) => Err(ServiceError::Conflict(format!(
            "cost report {} is segment {segment}'s; change or delete it through /v2/segments/{segment}",
            report.token
        ))),
        None => Ok(()),
    }
}

pub async fn delete(store: &dyn Store, account: &AccountToken, kind: ViewKind, token: &str) -> Result<()> {
    if !token.starts_with(kind.prefix()) {
        return Err(ServiceError::NotFound(kind.noun()));
    }
    if kind == ViewKind::CostReport {
        generated_by_segment(&get(store, account, kind, token).await?)?;
    }
    match store.delete_report_object(account, kind, token).await? {
        crate::store::ReportObjectDeletion::Deleted => Ok(()),
        crate::store::ReportObjectDeletion::NotFound => Err(ServiceError::NotFound(kind.noun())),
        crate::store::ReportObjectDeletion::NotEmpty(n) => Err(ServiceError::Conflict(format!(
            "the folder holds {n} report(s) or folder(s); move or delete them first"
        ))),
        // Budgets, alerts and notifications that follow a report hold it (foreign keys).
        crate::store::ReportObjectDeletion::InUse(users) => {
            let named: Vec<String> = users.iter().map(|(noun, token)| format!("{noun} {token}")).collect();
            Err(ServiceError::Conflict(format!(
                "the {} follow this report; delete them or point them at another report first",
                named.join(", ")
            )))
        }
    }
}

/// Every filter a report applies: its own, its saved filters', then its folders' saved filters (up the
/// folder tree), each checked again (a filter stored under older checks fails here, by name).
async fn report_filters(
    store: &dyn Store,
    account: &AccountToken,
    report: &ReportObject,
    definition: &ReportDefinition,
) -> Result<Vec<Filter>> {
    let mut texts: Vec<(String, String)> = Vec::new();
    if let Some(f) = &definition.filter {
        texts.push((format!("cost report {}", report.token), f.clone()));
    }
    let mut saved = report.saved_filter_tokens.clone();
    let mut folder = report.folder_token.clone();
    let mut seen = Vec::new();
    while let Some(token) = folder {
        if seen.contains(&token) {
            break;
        }
        let Some(f) = store.get_report_object(account, ViewKind::Folder, &token).await? else { break };
        saved.extend(f.saved_filter_tokens.iter().cloned());
        seen.push(token);
        folder = f.folder_token;
    }
    let mut applied: Vec<String> = Vec::new();
    for token in saved {
        if applied.contains(&token) {
            continue;
        }
        if let Some(f) = store.get_report_object(account, ViewKind::SavedFilter, &token).await? {
            if let Some(text) = saved_filter_definition(&f)?.filter {
                texts.push((format!("saved filter {token}"), text));
            }
        }
        applied.push(token);
    }
    let mut filters = Vec::new();
    let mut errors = Vec::new();
    for (whose, text) in texts {
        match Filter::parse(&text) {
            Ok(f) => filters.push(f),
            Err(e) => errors.push(format!("the filter of {whose} no longer passes: {e}; update it")),
        }
    }
    done(errors, filters)
}

/// What `GET /v2/costs?cost_report_token=` starts from on `today`.
pub async fn report_defaults(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    today: NaiveDate,
) -> Result<Defaults> {
    let report = get(store, account, ViewKind::CostReport, token).await?;
    let mut definition = report_definition(&report)?;
    let (start, end) = definition.dates(today);
    // A segment's report: the segment's scope (which holds its filter) and inherited settings.
    let segment = match &definition.segment_token {
        Some(segment) => {
            let (scope, settings) = super::segments::report_scope(store, account, segment).await?;
            definition.filter = None;
            definition.settings = settings;
            Some(scope)
        }
        None => None,
    };
    Ok(Defaults {
        start,
        end,
        groupings: definition.grouping_list().unwrap_or_else(crate::model::cost_query::default_groupings),
        date_bin: definition.cost_date_bin(),
        settings: definition.settings,
        filters: report_filters(store, account, &report, &definition).await?,
        workspace: Some(report.workspace_token.clone()),
        from_report: true,
        segment,
    })
}

/// The cost reports that apply each of `filters` themselves, in the filters' order (one store read).
pub async fn saved_filter_users(
    store: &dyn Store,
    account: &AccountToken,
    filters: &[ReportObject],
) -> Result<Vec<Vec<String>>> {
    let tokens: Vec<String> = filters.iter().map(|f| f.token.clone()).collect();
    let mut by_filter: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (filter, report) in store.users_of_saved_filters(account, &tokens).await? {
        by_filter.entry(filter).or_default().push(report);
    }
    Ok(tokens.iter().map(|t| by_filter.remove(t).unwrap_or_default()).collect())
}
