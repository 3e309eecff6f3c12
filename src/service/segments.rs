//! Segments (`/v2/segments`, docs/segments.md): the account's tree of segments, each with the cost report
//! costd generates for it, changed only as a whole.
//!
//! Every write follows the same steps:
//! 1. read the tree (every segment of the account) with its version;
//! 2. make the new tree from it in memory: the change checked against the whole tree (parents in the
//!    account and the workspace, no cycle, depth, counts, settings only at the top), the child costd keeps
//!    for `track_unallocated` added or removed with it;
//! 3. compare the two trees: segments new or changed are written, segments gone are deleted (children
//!    first), and every segment whose generated report would read differently (its title, filter or
//!    inherited settings) has the report rewritten;
//! 4. write all of it in one transaction, if the tree is still at the version read; else start again at 1
//!    (so two moves at once never make a cycle together). A report a budget or alert still follows stops a
//!    delete whole.

use chrono::{SubsecRound, Utc};

use crate::model::cost_query::CostSettings;
use crate::model::report::{ReportDefinition, ReportObjectFields};
use crate::model::segment::{
    settings_on_child, Segment, SegmentChange, SegmentFields, SegmentScope, SegmentSettings, Tree, DEFAULT_PRIORITY,
    MAX_DEPTH, MAX_SEGMENTS, UNALLOCATED_TITLE,
};
use crate::model::token::{new_token, prefix, AccountToken, SegmentToken};
use crate::store::{SegmentBatch, SegmentWrite, Store};

use super::error::{Result, ServiceError};

/// How often a write is redone when others keep writing the same tree.
const ATTEMPTS: usize = 5;

fn not_found() -> ServiceError {
    ServiceError::NotFound("segment")
}

fn parse_token(text: &str) -> Result<SegmentToken> {
    SegmentToken::parse(text).ok_or_else(not_found)
}

fn done(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// The account's segments, oldest first, of one workspace and with `q` in the title (any case) if given.
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    workspace: Option<&str>,
    q: Option<&str>,
) -> Result<Vec<Segment>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
    let workspace = workspace.map(str::trim).filter(|w| !w.is_empty());
    Ok(store
        .segment_tree(account)
        .await?
        .segments
        .into_iter()
        .filter(|s| workspace.is_none_or(|w| s.workspace_token == w))
        .filter(|s| q.as_ref().is_none_or(|q| s.title.to_lowercase().contains(q)))
        .collect())
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &str) -> Result<Segment> {
    let token = parse_token(token)?;
    store.segment_tree(account).await?.segments.into_iter().find(|s| s.token == token).ok_or_else(not_found)
}

/// A segment's generated report: its title, its own filter (shown; the query applies the whole scope),
/// the settings it inherits, Vantage's other defaults.
fn report_of(segment: &Segment, settings: CostSettings) -> ReportObjectFields {
    let definition = ReportDefinition {
        filter: segment.filter.clone(),
        settings,
        segment_token: Some(segment.token.to_string()),
        ..ReportDefinition::default()
    };
    ReportObjectFields {
        workspace_token: segment.workspace_token.clone(),
        folder_token: None,
        title: segment.title.clone(),
        definition: serde_json::to_string(&definition).expect("plain data serialises"),
        saved_filter_tokens: Vec::new(),
    }
}

/// The child costd keeps under `parent` for its `track_unallocated`.
fn unallocated_child(parent: &Segment) -> Segment {
    Segment {
        token: SegmentToken::generate(),
        workspace_token: parent.workspace_token.clone(),
        parent: Some(parent.token.clone()),
        title: UNALLOCATED_TITLE.to_string(),
        description: format!("The costs of {} that none of its other segments holds.", parent.title),
        priority: i32::MAX,
        track_unallocated: false,
        report_settings: SegmentSettings::default(),
        filter: None,
        report_token: new_token(prefix::REPORT),
        unallocated: true,
        created_at: Utc::now().trunc_subsecs(6),
    }
}

/// Adds or removes `segment`'s unallocated child to match its `track_unallocated`.
fn keep_unallocated(segments: &mut Vec<Segment>, token: &SegmentToken) {
    let Some(segment) = segments.iter().find(|s| &s.token == token).cloned() else { return };
    let has = segments.iter().any(|s| s.unallocated && s.parent.as_ref() == Some(token));
    if segment.track_unallocated && !has {
        segments.push(unallocated_child(&segment));
    } else if !segment.track_unallocated && has {
        segments.retain(|s| !(s.unallocated && s.parent.as_ref() == Some(token)));
    }
}

/// Writes the step from `old` to `new` (steps 3 and 4 of the module's workflow).
async fn write(
    store: &dyn Store,
    account: &AccountToken,
    version: i64,
    old: &[Segment],
    new: &[Segment],
) -> Result<SegmentWrite> {
    let (old_tree, new_tree) = (Tree::new(old), Tree::new(new));
    let mut batch = SegmentBatch::default();
    // Parents before children: a new child's parent row exists when the child is written.
    let mut ordered: Vec<&Segment> = new.iter().filter(|s| s.parent.is_none()).collect();
    let mut i = 0;
    while i < ordered.len() {
        let parent = ordered[i].token.clone();
        ordered.extend(new.iter().filter(|s| s.parent.as_ref() == Some(&parent)));
        i += 1;
    }
    for s in ordered {
        let before = old_tree.get(&s.token);
        if before != Some(s) {
            batch.put.push(s.clone());
        }
        let report = report_of(s, new_tree.settings(&s.token));
        let same_report = before.is_some_and(|b| {
            let was = report_of(b, old_tree.settings(&b.token));
            was.title == report.title && was.definition == report.definition
        });
        if !same_report {
            batch.reports.push((s.report_token.clone(), report));
        }
    }
    // Children before parents.
    let mut gone: Vec<&Segment> = old.iter().filter(|s| new_tree.get(&s.token).is_none()).collect();
    gone.sort_by_key(|s| std::cmp::Reverse(old_tree.path(&s.token).len()));
    batch.delete = gone.into_iter().cloned().collect();
    Ok(store.write_segments(account, version, &batch).await?)
}

/// Steps 1 to 4, redone while the tree moves under the write. `change` makes the new tree from the old one
/// and answers the token of the segment to return.
async fn rewrite(
    store: &dyn Store,
    account: &AccountToken,
    mut change: impl FnMut(&[Segment]) -> Result<(Vec<Segment>, Option<SegmentToken>)>,
) -> Result<Option<Segment>> {
    for _ in 0..ATTEMPTS {
        let tree = store.segment_tree(account).await?;
        let (new, answer) = change(&tree.segments)?;
        match write(store, account, tree.version, &tree.segments, &new).await? {
            SegmentWrite::Done => {
                let Some(token) = answer else { return Ok(None) };
                return Ok(Some(get(store, account, &token).await?));
            }
            SegmentWrite::Stale => continue,
            SegmentWrite::ReportInUse(users) => {
                let named: Vec<String> = users.iter().map(|(noun, token)| format!("{noun} {token}")).collect();
                return Err(ServiceError::Conflict(format!(
                    "the {} follow the segment's report; delete them or point them at another report first",
                    named.join(", ")
                )));
            }
        }
    }
    Err(ServiceError::TooMany("the segments are being changed by others; try again".into()))
}

/// Checks that hold for any tree: the count, each segment's depth.
fn check_tree(new: &[Segment], errors: &mut Vec<String>) {
    if new.len() > MAX_SEGMENTS {
        errors.push(format!(
            "an account may have at most {MAX_SEGMENTS} segments (each unallocated segment counts); it would have {}",
            new.len()
        ));
    }
    let tree = Tree::new(new);
    if let Some(deep) = new.iter().find(|s| tree.path(&s.token).len() > MAX_DEPTH) {
        errors.push(format!(
            "parent_segment_token: segments nest at most {MAX_DEPTH} levels deep; {} would be deeper",
            deep.token
        ));
    }
}

/// The parent a change names: one of the account's segments (not costd's unallocated child), not
/// `moving` or under it.
fn check_parent(
    tree: &Tree,
    parent: &SegmentToken,
    moving: Option<&SegmentToken>,
    errors: &mut Vec<String>,
) -> Option<Segment> {
    let Some(p) = tree.get(parent) else {
        errors.push(format!("parent_segment_token: no segment {parent} in this account"));
        return None;
    };
    if p.unallocated {
        errors.push(format!(
            "parent_segment_token: {parent} is the segment costd keeps for unallocated costs; it takes no children"
        ));
        return None;
    }
    if let Some(m) = moving {
        if tree.path(parent).iter().any(|s| &s.token == m) {
            errors.push(format!(
                "parent_segment_token: {parent} is {m} or one of its descendants; a segment cannot be inside itself"
            ));
            return None;
        }
    }
    Some(p.clone())
}

#[tracing::instrument(skip(store, fields))]
pub async fn create(store: &dyn Store, account: &AccountToken, fields: SegmentFields) -> Result<Segment> {
    let mut errors = Vec::new();
    if fields.title.is_none() {
        errors.push("title is required".to_string());
    }
    let change = SegmentChange::try_from(fields).map_err(|e| ServiceError::Invalid([errors.clone(), e].concat()))?;
    let title = change.title.clone();
    // A top-level segment's workspace is checked once (a workspace is not moved by segment writes).
    let workspace = match change.parent {
        Some(Some(_)) => None,
        _ => super::reports::workspace(store, account, change.workspace_token.as_deref(), None, &mut errors).await?,
    };
    done(errors)?;
    let token = SegmentToken::generate();
    let report_token = new_token(prefix::REPORT);
    let created_at = Utc::now().trunc_subsecs(6);
    let segment = rewrite(store, account, |old| {
        let tree = Tree::new(old);
        let mut errors = Vec::new();
        let parent = match &change.parent {
            Some(Some(p)) => check_parent(&tree, p, None, &mut errors),
            _ => None,
        };
        if let (Some(p), Some(w)) = (&parent, &change.workspace_token) {
            if &p.workspace_token != w {
                errors.push(format!(
                    "workspace_token: the parent segment {} is in workspace {}; leave workspace_token out or \
                         pass that one",
                    p.token, p.workspace_token
                ));
            }
        }
        if parent.is_some() && settings_on_child(&change) {
            errors.push(
                "report_settings: only top-level segments set report settings; a child inherits its top-level \
                     segment's"
                    .into(),
            );
        }
        let segment = Segment {
            token: token.clone(),
            workspace_token: parent
                .as_ref()
                .map(|p| p.workspace_token.clone())
                .or_else(|| workspace.clone())
                .unwrap_or_default(),
            parent: parent.as_ref().map(|p| p.token.clone()),
            title: title.clone().unwrap_or_default(),
            description: change.description.clone().unwrap_or_default(),
            priority: change.priority.unwrap_or(DEFAULT_PRIORITY),
            track_unallocated: change.track_unallocated.unwrap_or(false),
            report_settings: if parent.is_some() {
                SegmentSettings::default()
            } else {
                change.report_settings.unwrap_or_default()
            },
            filter: change.filter.clone().flatten(),
            report_token: report_token.clone(),
            unallocated: false,
            created_at,
        };
        let mut new = old.to_vec();
        new.push(segment);
        keep_unallocated(&mut new, &token);
        check_tree(&new, &mut errors);
        done(errors)?;
        Ok((new, Some(token.clone())))
    })
    .await?;
    segment.ok_or_else(|| anyhow::anyhow!("the new segment vanished").into())
}

/// Refuses a write to the child costd keeps for unallocated costs.
fn kept_by_costd(s: &Segment) -> Result<()> {
    if s.unallocated {
        let parent = s.parent.as_ref().map(|p| p.to_string()).unwrap_or_default();
        return Err(ServiceError::Conflict(format!(
            "segment {} holds {parent}'s unallocated costs and is kept by costd; set track_unallocated on {parent} \
             to remove it",
            s.token
        )));
    }
    Ok(())
}

#[tracing::instrument(skip(store, fields))]
pub async fn update(store: &dyn Store, account: &AccountToken, token: &str, fields: SegmentFields) -> Result<Segment> {
    let token = parse_token(token)?;
    let change = SegmentChange::try_from(fields).map_err(ServiceError::Invalid)?;
    let segment = rewrite(store, account, |old| {
        let tree = Tree::new(old);
        let current = tree.get(&token).ok_or_else(not_found)?.clone();
        kept_by_costd(&current)?;
        let mut errors = Vec::new();
        let mut next = current.clone();
        if let Some(w) = &change.workspace_token {
            if w != &current.workspace_token {
                errors.push(format!(
                    "workspace_token: segment {token} is in workspace {}; a segment stays in its workspace \
                         (create one in the other)",
                    current.workspace_token
                ));
            }
        }
        match &change.parent {
            Some(Some(p)) => {
                if let Some(parent) = check_parent(&tree, p, Some(&token), &mut errors) {
                    if parent.workspace_token != current.workspace_token {
                        errors.push(format!(
                            "parent_segment_token: {p} is in workspace {}; a segment stays in its workspace",
                            parent.workspace_token
                        ));
                    }
                    next.parent = Some(parent.token);
                }
            }
            Some(None) => next.parent = None,
            None => {}
        }
        if let Some(t) = &change.title {
            next.title = t.clone();
        }
        if let Some(d) = &change.description {
            next.description = d.clone();
        }
        if let Some(p) = change.priority {
            next.priority = p;
        }
        // Vantage's update documents `track_unallocated` with a default of false (and its Python client always
        // sends it): an update without it stops tracking, whichever client sent it.
        next.track_unallocated = change.track_unallocated.unwrap_or(false);
        if let Some(f) = &change.filter {
            next.filter = f.clone();
        }
        if next.parent.is_some() {
            if settings_on_child(&change) {
                errors.push(
                    "report_settings: only top-level segments set report settings; a child inherits its \
                         top-level segment's"
                        .into(),
                );
            }
            // A segment that becomes a child takes its new top-level segment's settings.
            next.report_settings = SegmentSettings::default();
        } else if let Some(s) = &change.report_settings {
            next.report_settings = next.report_settings.overlaid(s);
        }
        let mut new: Vec<Segment> =
            old.iter().map(|s| if s.token == token { next.clone() } else { s.clone() }).collect();
        keep_unallocated(&mut new, &token);
        check_tree(&new, &mut errors);
        done(errors)?;
        Ok((new, Some(token.clone())))
    })
    .await?;
    segment.ok_or_else(not_found)
}

#[tracing::instrument(skip(store))]
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &str) -> Result<()> {
    let token = parse_token(token)?;
    rewrite(store, account, |old| {
        let tree = Tree::new(old);
        let current = tree.get(&token).ok_or_else(not_found)?;
        kept_by_costd(current)?;
        let children: Vec<String> = tree
            .children(&current.workspace_token, Some(&token))
            .iter()
            .filter(|c| !c.unallocated)
            .map(|c| c.token.to_string())
            .collect();
        if !children.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "segment {token} has the segments {} under it; delete or move them first",
                children.join(", ")
            )));
        }
        let new = old.iter().filter(|s| s.token != token && s.parent.as_ref() != Some(&token)).cloned().collect();
        Ok((new, None))
    })
    .await?;
    Ok(())
}

/// What a query of a segment's report applies: the segment's scope and the settings it inherits.
pub async fn report_scope(
    store: &dyn Store,
    account: &AccountToken,
    segment: &str,
) -> Result<(SegmentScope, CostSettings)> {
    let segments = store.segment_tree(account).await?.segments;
    let tree = Tree::new(&segments);
    let token = SegmentToken::parse(segment)
        .filter(|t| tree.get(t).is_some())
        .ok_or_else(|| anyhow::anyhow!("a report names segment {segment}, which is gone"))?;
    let scope = tree.scope(&token).map_err(ServiceError::unprocessable)?;
    Ok((scope, tree.settings(&token)))
}
