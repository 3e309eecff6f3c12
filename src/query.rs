//! The costs query's parameters as both the API and `costd query` take them: a Vantage query string
//! checked into a [`CostQuery`], every problem listed.

use chrono::{Datelike, NaiveDate, Utc};

use crate::engine::costs::{CostQuery, DateBin, Settings};
use crate::engine::schema::groupings as column_groupings;
use crate::engine::vql::Filter;
use crate::store::PageRequest;

/// Largest `limit` of `/v2/costs`.
pub const MAX_COSTS_LIMIT: u32 = 5000;
const DEFAULT_GROUPINGS: [&str; 3] = ["provider", "service", "account_id"];

/// The query string, checked; every problem is listed.
pub struct Params {
    pub query: CostQuery,
    pub workspace_token: Option<String>,
    pub page: PageRequest,
}

fn parse_bool(name: &str, v: &str, errors: &mut Vec<String>) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(format!("{name} must be true or false, got {v:?}"));
            None
        }
    }
}

pub fn parse_params(raw: &str) -> Result<Params, Vec<String>> {
    let mut errors = Vec::new();
    let today = Utc::now().date_naive();
    let month_start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("valid date");
    let month_end =
        month_start.checked_add_months(chrono::Months::new(1)).expect("valid date").pred_opt().expect("valid date");
    let (mut start, mut end) = (month_start, month_end);
    let (mut groupings, mut date_bin, mut descending) = (None::<Vec<String>>, DateBin::Day, true);
    let (mut page, mut limit) = (1u32, 100u32);
    let mut settings = Settings::default();
    let (mut filter, mut workspace_token) = (None, None);

    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let v = value.trim();
        match key.as_ref() {
            "filter" if !v.is_empty() => match Filter::parse(v) {
                Ok(e) => filter = Some(e),
                Err(e) => errors.push(e),
            },
            "filter" => {}
            "cost_report_token" => {
                errors.push("cost_report_token: cost reports are not supported yet; pass a VQL filter".into())
            }
            "workspace_token" => workspace_token = Some(v.to_string()),
            "start_date" | "end_date" => match NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d") {
                Ok(d) if key == "start_date" => start = d,
                Ok(d) => end = d,
                Err(_) => errors.push(format!("{key} must be a date like 2024-05-01, got {v:?}")),
            },
            "groupings" | "groupings[]" => {
                let list = groupings.get_or_insert_with(Vec::new);
                for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    if column_groupings().any(|(name, _)| name == g) {
                        if !list.iter().any(|x| x == g) {
                            list.push(g.to_string());
                        }
                    } else if g == "tagged" || g.strip_prefix("tag:").is_some_and(|k| !k.is_empty()) {
                        if !list.iter().any(|x| x == g) {
                            list.push(g.to_string());
                        }
                    } else {
                        let mut valid: Vec<&str> = column_groupings().map(|(n, _)| n).collect();
                        valid.sort_unstable();
                        errors.push(format!("groupings: unknown grouping {g:?}; valid: {}", valid.join(", ")));
                    }
                }
            }
            "date_bin" => match v.parse::<DateBin>() {
                Ok(b) => date_bin = b,
                Err(e) => errors.push(e),
            },
            "order" => match v {
                "asc" => descending = false,
                "desc" => descending = true,
                _ => errors.push(format!("order must be asc or desc, got {v:?}")),
            },
            "page" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => page = p,
                _ => errors.push(format!("page must be a whole number from 1, got {v:?}")),
            },
            "limit" => match v.parse::<u32>() {
                Ok(l) if (1..=MAX_COSTS_LIMIT).contains(&l) => limit = l,
                _ => errors.push(format!("limit must be between 1 and {MAX_COSTS_LIMIT}, got {v:?}")),
            },
            "settings[include_credits]" => settings.include_credits = parse_bool(&key, v, &mut errors).unwrap_or(false),
            "settings[include_refunds]" => settings.include_refunds = parse_bool(&key, v, &mut errors).unwrap_or(false),
            "settings[include_discounts]" => {
                settings.include_discounts = parse_bool(&key, v, &mut errors).unwrap_or(true)
            }
            "settings[include_tax]" => settings.include_tax = parse_bool(&key, v, &mut errors).unwrap_or(true),
            _ => {}
        }
    }
    if end < start {
        errors.push(format!("end_date ({end}) must not be before start_date ({start})"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let groupings = groupings.unwrap_or_else(|| DEFAULT_GROUPINGS.iter().map(|g| g.to_string()).collect());
    Ok(Params {
        query: CostQuery { start, end, groupings, date_bin, descending, settings, filter },
        workspace_token,
        page: PageRequest { page, limit },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_this_month_by_day_newest_first() {
        let p = parse_params("").unwrap();
        assert_eq!(p.query.groupings, vec!["provider", "service", "account_id"]);
        assert_eq!((p.query.date_bin, p.query.descending), (DateBin::Day, true));
        assert_eq!(p.query.start.day(), 1);
        assert_eq!((p.page.page, p.page.limit), (1, 100));
    }

    proptest::proptest! {
        #[test]
        fn any_query_string_is_parsed_or_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = parse_params(&s);
        }

        #[test]
        fn well_formed_parameters_parse(
            groupings in proptest::collection::vec(proptest::sample::select(vec![
                "account_id", "billing_account_id", "charge_type", "cost_category", "cost_subcategory", "provider",
                "region", "resource_id", "service", "usage_unit", "tagged", "tag:kubernetes.io/cluster", "tag:Cost Center",
            ]), 1..4),
            bin in proptest::sample::select(vec!["day", "week", "month", "quarter"]),
            limit in 1u32..=5000,
            page in 1u32..100,
            flags in proptest::prelude::any::<[bool; 4]>(),
        ) {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("groupings", &groupings.join(","));
            q.append_pair("date_bin", bin);
            q.append_pair("start_date", "2024-01-01");
            q.append_pair("end_date", "2024-12-31");
            q.append_pair("limit", &limit.to_string());
            q.append_pair("page", &page.to_string());
            for (name, on) in ["include_credits", "include_refunds", "include_discounts", "include_tax"].iter().zip(flags) {
                q.append_pair(&format!("settings[{name}]"), &on.to_string());
            }
            let p = parse_params(&q.finish());
            proptest::prop_assert!(p.is_ok(), "{:?}", p.err());
            let p = p.unwrap();
            proptest::prop_assert_eq!((p.page.limit, p.page.page), (limit, page));
            proptest::prop_assert_eq!(p.query.settings.include_credits, flags[0]);
        }
    }
}
