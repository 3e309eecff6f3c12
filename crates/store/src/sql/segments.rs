//! Segments: one row each, the report settings one JSON object decoded here.

use chrono::{DateTime, Utc};

use costd_model::segment::{Segment, SegmentSettings};
use costd_model::token::SegmentToken;

pub(crate) const SEGMENT_COLUMNS: &str = "token, workspace_token, parent_token, title, description, priority, \
     track_unallocated, report_settings, filter, report_token, unallocated, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct SegmentRow {
    token: crate::Text<SegmentToken>,
    workspace_token: String,
    parent_token: Option<crate::Text<SegmentToken>>,
    title: String,
    description: String,
    priority: i32,
    track_unallocated: bool,
    report_settings: String,
    filter: Option<String>,
    report_token: String,
    unallocated: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<SegmentRow> for Segment {
    type Error = anyhow::Error;

    fn try_from(r: SegmentRow) -> anyhow::Result<Segment> {
        let report_settings: SegmentSettings = serde_json::from_str(&r.report_settings)
            .map_err(|e| anyhow::anyhow!("segment {} has unreadable report settings: {e}", r.token.0))?;
        Ok(Segment {
            token: r.token.0,
            workspace_token: r.workspace_token,
            parent: r.parent_token.map(|p| p.0),
            title: r.title,
            description: r.description,
            priority: r.priority,
            track_unallocated: r.track_unallocated,
            report_settings,
            filter: r.filter,
            report_token: r.report_token,
            unallocated: r.unallocated,
            created_at: r.created_at,
        })
    }
}

pub(crate) fn settings_json(settings: &SegmentSettings) -> String {
    serde_json::to_string(settings).expect("plain data serialises")
}
