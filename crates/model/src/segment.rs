//! Segments (`/v2/segments`): an account's costs divided into a tree (docs/segments.md).
//!
//! A segment has a VQL filter, a priority and maybe a parent. Among siblings (the segments of one parent,
//! or the top-level segments of one workspace), a cost belongs to the first, in priority order (the lower
//! number first, then the older), whose filter keeps it: so a cost assigned to one segment never shows in
//! a sibling of lower priority, and a child only ever holds costs its parent holds. A segment with no
//! filter keeps every cost its parent's higher-priority children left. `track_unallocated` on a segment
//! gives it a child costd keeps itself, "Unallocated Costs", with no filter and after every sibling: it
//! holds exactly what none of the other children took, so the children always add up to their parent.
//!
//! Each segment has a cost report costd generates and keeps in step (its `report_token`): the report's
//! costs are the segment's, with the report settings of its top-level segment (only top-level segments
//! set them; their children inherit them). What a report's query applies of its segment is a
//! [`SegmentScope`]: at each level of the path from the top, the segment's own filter and its
//! higher-priority siblings' filters, which the engine applies with "a filter that is not true does not
//! keep" (a cost whose region is NULL is not kept by `costs.region = 'x'`, so it stays for the siblings
//! after; SQL's `NOT` would drop it from both).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cost_query::CostSettings;
use crate::token::SegmentToken;
use crate::vql::Filter;

/// Most segments an account may have (each is also a report).
pub const MAX_SEGMENTS: usize = 500;
/// Deepest a segment may sit: a top-level segment is at depth 1.
pub const MAX_DEPTH: usize = 8;
/// The priority of a segment created without one (as Vantage's examples show).
pub const DEFAULT_PRIORITY: i32 = 100;
/// The title of the child costd keeps for `track_unallocated`.
pub const UNALLOCATED_TITLE: &str = "Unallocated Costs";
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 1024;

/// The report settings a top-level segment sets (Vantage's `report_settings`); `None`: Vantage's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SegmentSettings {
    pub include_credits: Option<bool>,
    pub include_refunds: Option<bool>,
    pub include_discounts: Option<bool>,
    pub include_tax: Option<bool>,
    pub amortize: Option<bool>,
}

impl SegmentSettings {
    /// `base` with every setting given laid over it.
    pub fn over(&self, base: CostSettings) -> CostSettings {
        CostSettings {
            include_credits: self.include_credits.unwrap_or(base.include_credits),
            include_refunds: self.include_refunds.unwrap_or(base.include_refunds),
            include_discounts: self.include_discounts.unwrap_or(base.include_discounts),
            include_tax: self.include_tax.unwrap_or(base.include_tax),
            amortize: self.amortize.unwrap_or(base.amortize),
            ..base
        }
    }

    /// Each setting given in `change` replaces this one's.
    pub fn overlaid(&self, change: &SegmentSettings) -> SegmentSettings {
        SegmentSettings {
            include_credits: change.include_credits.or(self.include_credits),
            include_refunds: change.include_refunds.or(self.include_refunds),
            include_discounts: change.include_discounts.or(self.include_discounts),
            include_tax: change.include_tax.or(self.include_tax),
            amortize: change.amortize.or(self.amortize),
        }
    }

    /// Every setting with its value in force (the defaults filled in), as a top-level segment shows them.
    pub fn shown(&self) -> SegmentSettings {
        let s = self.over(CostSettings::default());
        SegmentSettings {
            include_credits: Some(s.include_credits),
            include_refunds: Some(s.include_refunds),
            include_discounts: Some(s.include_discounts),
            include_tax: Some(s.include_tax),
            amortize: Some(s.amortize),
        }
    }

    fn is_empty(&self) -> bool {
        *self == SegmentSettings::default()
    }
}

/// A segment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub token: SegmentToken,
    pub workspace_token: String,
    pub parent: Option<SegmentToken>,
    pub title: String,
    pub description: String,
    pub priority: i32,
    pub track_unallocated: bool,
    /// Only a top-level segment's count; a child's are its top-level segment's.
    pub report_settings: SegmentSettings,
    /// Checked VQL; `None`: every cost its parent (or the workspace) has left.
    pub filter: Option<String>,
    pub report_token: String,
    /// costd keeps this child for its parent's `track_unallocated`: no filter, after every sibling.
    pub unallocated: bool,
    pub created_at: DateTime<Utc>,
}

impl Segment {
    /// Where it comes among its siblings: the unallocated child last, then by priority, then oldest first.
    fn order(&self) -> (bool, i32, DateTime<Utc>, &str) {
        (self.unallocated, self.priority, self.created_at, self.token.as_str())
    }
}

/// What a request may set (`POST` and `PUT /v2/segments`), as Vantage names it. Text that names nothing
/// (`""`) clears a filter, and moves a segment to the top level as `parent_segment_token`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<i64>,
    pub track_unallocated: Option<bool>,
    pub report_settings: Option<SegmentSettings>,
    pub workspace_token: Option<String>,
    pub filter: Option<String>,
    pub parent_segment_token: Option<String>,
}

/// A request's fields, each checked; `None`: not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentChange {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<i32>,
    pub track_unallocated: Option<bool>,
    pub report_settings: Option<SegmentSettings>,
    pub workspace_token: Option<String>,
    /// `Some(None)`: clear it.
    pub filter: Option<Option<String>>,
    /// `Some(None)`: to the top level.
    pub parent: Option<Option<SegmentToken>>,
}

impl TryFrom<SegmentFields> for SegmentChange {
    type Error = Vec<String>;

    /// Every field checked on its own; what depends on the other segments is the service's to check.
    fn try_from(f: SegmentFields) -> Result<SegmentChange, Vec<String>> {
        let mut errors = Vec::new();
        let title = f.title.map(|t| crate::report::title(Some(&t), None, &mut errors));
        let description = f.description.map(|d| d.trim().to_string());
        if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            errors.push(format!("description must be at most {MAX_DESCRIPTION} characters"));
        }
        let priority = f.priority.map(|p| {
            i32::try_from(p).ok().filter(|p| *p >= 0 && *p < i32::MAX).unwrap_or_else(|| {
                errors.push(format!("priority must be a whole number from 0 to {}, got {p}", i32::MAX - 1));
                DEFAULT_PRIORITY
            })
        });
        let filter = f.filter.map(|text| crate::report::filter_field("filter", Some(&text), &mut errors));
        let parent = f.parent_segment_token.map(|t| match t.trim() {
            "" => None,
            t => match SegmentToken::parse(t) {
                Some(token) => Some(token),
                None => {
                    errors.push(format!("parent_segment_token: no segment {t} in this account"));
                    None
                }
            },
        });
        let workspace_token = f.workspace_token.map(|w| w.trim().to_string()).filter(|w| !w.is_empty());
        if errors.is_empty() {
            Ok(SegmentChange {
                title,
                description,
                priority,
                track_unallocated: f.track_unallocated,
                report_settings: f.report_settings,
                workspace_token,
                filter,
                parent,
            })
        } else {
            Err(errors)
        }
    }
}

/// One level of a segment's path: the costs its filter keeps (`None`: every one) that no filter of a
/// higher-priority sibling keeps (a sibling with `None` keeps everything, leaving nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeLevel {
    pub keep: Option<Filter>,
    pub before: Vec<Option<Filter>>,
}

/// The costs a segment is assigned: every level of its path from the top, each applied within the one
/// above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentScope {
    pub levels: Vec<ScopeLevel>,
}

impl SegmentScope {
    /// Every filter it reads (to know which virtual tags it needs).
    pub fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.levels.iter().flat_map(|l| l.keep.iter().chain(l.before.iter().flatten()))
    }
}

/// An account's segments, read whole: the tree and the order costs are assigned in.
pub struct Tree<'a> {
    segments: &'a [Segment],
}

impl<'a> Tree<'a> {
    pub fn new(segments: &'a [Segment]) -> Tree<'a> {
        Tree { segments }
    }

    pub fn get(&self, token: &SegmentToken) -> Option<&'a Segment> {
        self.segments.iter().find(|s| &s.token == token)
    }

    /// The children of `parent` in `workspace` (the top level when `None`), in the order costs go to them.
    pub fn children(&self, workspace: &str, parent: Option<&SegmentToken>) -> Vec<&'a Segment> {
        let mut found: Vec<&Segment> =
            self.segments.iter().filter(|s| s.parent.as_ref() == parent && s.workspace_token == workspace).collect();
        found.sort_by(|a, b| a.order().cmp(&b.order()));
        found
    }

    /// `token` and its ancestors, the top-level segment first; empty when there is no such segment. A
    /// stored cycle (which no write makes) ends the walk rather than looping.
    pub fn path(&self, token: &SegmentToken) -> Vec<&'a Segment> {
        let mut path: Vec<&Segment> = Vec::new();
        let mut next = self.get(token);
        while let Some(s) = next {
            if path.iter().any(|p| p.token == s.token) {
                break;
            }
            path.push(s);
            next = s.parent.as_ref().and_then(|p| self.get(p));
        }
        path.reverse();
        path
    }

    /// The report settings in force for `token`: its top-level segment's over Vantage's defaults.
    pub fn settings(&self, token: &SegmentToken) -> CostSettings {
        match self.path(token).first() {
            Some(top) => top.report_settings.over(CostSettings::default()),
            None => CostSettings::default(),
        }
    }

    /// What a query of `token`'s report applies. Each stored filter is parsed again; one that no longer
    /// parses is named.
    pub fn scope(&self, token: &SegmentToken) -> Result<SegmentScope, String> {
        let parse = |s: &Segment| -> Result<Option<Filter>, String> {
            s.filter
                .as_deref()
                .map(|text| {
                    Filter::parse(text)
                        .map_err(|e| format!("the filter of segment {} no longer passes: {e}; update it", s.token))
                })
                .transpose()
        };
        let mut levels = Vec::new();
        for s in self.path(token) {
            let mut before = Vec::new();
            for sibling in self.children(&s.workspace_token, s.parent.as_ref()) {
                if sibling.token == s.token {
                    break;
                }
                before.push(parse(sibling)?);
            }
            levels.push(ScopeLevel { keep: parse(s)?, before });
        }
        Ok(SegmentScope { levels })
    }
}

/// A segment as the API shows it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentView {
    pub token: String,
    pub title: String,
    pub parent_segment_token: Option<String>,
    pub description: String,
    pub track_unallocated: bool,
    /// Only on top-level segments (their children inherit them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_settings: Option<SegmentSettings>,
    pub priority: i32,
    pub filter: Option<String>,
    pub created_at: String,
    pub workspace_token: String,
    pub report_token: Option<String>,
}

impl From<&Segment> for SegmentView {
    fn from(s: &Segment) -> SegmentView {
        SegmentView {
            token: s.token.to_string(),
            title: s.title.clone(),
            parent_segment_token: s.parent.as_ref().map(|p| p.to_string()),
            description: s.description.clone(),
            track_unallocated: s.track_unallocated,
            report_settings: s.parent.is_none().then(|| s.report_settings.shown()),
            priority: s.priority,
            filter: s.filter.clone(),
            created_at: s.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            workspace_token: s.workspace_token.clone(),
            report_token: Some(s.report_token.clone()),
        }
    }
}

/// Report settings sent for a child: refused, naming where they come from.
pub fn settings_on_child(change: &SegmentChange) -> bool {
    change.report_settings.as_ref().is_some_and(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn segment(token: &str, parent: Option<&str>, priority: i32, filter: Option<&str>) -> Segment {
        Segment {
            token: SegmentToken::parse(&format!("fltr_sgmt_{token}")).unwrap(),
            workspace_token: "wrkspc_1".into(),
            parent: parent.map(|p| SegmentToken::parse(&format!("fltr_sgmt_{p}")).unwrap()),
            title: token.into(),
            description: String::new(),
            priority,
            track_unallocated: false,
            report_settings: SegmentSettings::default(),
            filter: filter.map(str::to_string),
            report_token: format!("rprt_{token}"),
            unallocated: false,
            created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn token(t: &str) -> SegmentToken {
        SegmentToken::parse(&format!("fltr_sgmt_{t}")).unwrap()
    }

    #[test]
    fn siblings_go_by_priority_then_age_and_the_unallocated_child_last() {
        let mut unallocated = segment("u", Some("p"), 0, None);
        unallocated.unallocated = true;
        let mut older = segment("b", Some("p"), 5, None);
        older.created_at -= chrono::Duration::days(1);
        let all = vec![segment("p", None, 1, None), unallocated, segment("a", Some("p"), 5, None), older];
        let tree = Tree::new(&all);
        let order: Vec<&str> = tree.children("wrkspc_1", Some(&token("p"))).iter().map(|s| s.title.as_str()).collect();
        assert_eq!(order, ["b", "a", "u"]);
    }

    #[test]
    fn a_scope_lists_each_level_with_the_siblings_before_it() {
        let all = vec![
            segment("aws", None, 1, Some("costs.provider = 'aws'")),
            segment("rest", None, 2, None),
            segment("s3", Some("rest"), 1, Some("costs.service = 'S3'")),
            segment("ec2", Some("rest"), 2, Some("costs.service = 'EC2'")),
        ];
        let tree = Tree::new(&all);
        let scope = tree.scope(&token("ec2")).unwrap();
        assert_eq!(scope.levels.len(), 2);
        assert_eq!(scope.levels[0].keep, None);
        assert_eq!(scope.levels[0].before, vec![Some(Filter::parse("costs.provider = 'aws'").unwrap())]);
        assert_eq!(scope.levels[1].keep, Some(Filter::parse("costs.service = 'EC2'").unwrap()));
        assert_eq!(scope.levels[1].before, vec![Some(Filter::parse("costs.service = 'S3'").unwrap())]);
        assert_eq!(scope.filters().count(), 3);
    }

    #[test]
    fn paths_follow_the_parents() {
        let all = vec![
            segment("a", None, 1, None),
            segment("b", Some("a"), 1, None),
            segment("c", Some("b"), 1, None),
            segment("d", Some("a"), 2, None),
        ];
        let tree = Tree::new(&all);
        let path: Vec<&str> = tree.path(&token("c")).iter().map(|s| s.title.as_str()).collect();
        assert_eq!(path, ["a", "b", "c"]);
    }

    #[test]
    fn a_child_takes_its_top_level_segments_settings() {
        let mut top = segment("a", None, 1, None);
        top.report_settings.include_credits = Some(true);
        let all = vec![top, segment("b", Some("a"), 1, None)];
        let settings = Tree::new(&all).settings(&token("b"));
        assert!(settings.include_credits);
        assert_eq!(settings.amortize, CostSettings::default().amortize);
    }

    #[test]
    fn fields_are_checked_each_on_its_own() {
        let fields = SegmentFields {
            title: Some(" ".into()),
            priority: Some(-1),
            filter: Some("costs.nope = 'x'".into()),
            parent_segment_token: Some("rprt_1".into()),
            ..SegmentFields::default()
        };
        let errors = SegmentChange::try_from(fields).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        let change = SegmentChange::try_from(SegmentFields {
            filter: Some(String::new()),
            parent_segment_token: Some(String::new()),
            ..SegmentFields::default()
        })
        .unwrap();
        assert_eq!(change.filter, Some(None));
        assert_eq!(change.parent, Some(None));
    }
}
