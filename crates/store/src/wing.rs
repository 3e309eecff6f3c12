//! The alerts wing's tables: budgets, budget alerts, cost alerts and their events, report notifications,
//! anomaly notifications and anomaly alerts, each in a table of its own (migration 0016).
//!
//! Every kind's table has the same columns around its definition (a JSON document decoded here, so the
//! rest of costd only sees model types: `model::budget::Budget`, …), and the keys its constraints need:
//! references as columns or ordered link tables with foreign keys, and unique keys (an anomaly per report,
//! provider, service and day; an event per alert and key). The store writes those keys from the definition
//! in the same statement or transaction as the definition itself, so they cannot disagree.
//!
//! A [`Kind`] describes its table once ([`Table`]); the SQL (`backend/wing.rs`) is written once for all of
//! them, and the typed calls (`dyn Store`'s `record`, `records`, `create_record`, …) are generic over the
//! kind. Deleting something still referenced fails by constraint, and the store then names who uses it
//! ([`RecordDeletion::InUse`]).

use costd_model::anomaly::{AlertDefinition, NotificationDefinition as AnomalyNotificationDefinition};
use costd_model::budget::{BudgetAlertDefinition, BudgetDefinition};
use costd_model::cost_alert::{CostAlertDefinition, EventDefinition, NotificationDefinition};
use costd_model::record::Record;
use costd_model::token::{
    AccountToken, AnomalyAlertToken, AnomalyNotificationToken, BudgetAlertToken, BudgetToken, CostAlertEventToken,
    CostAlertToken, ReportNotificationToken,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{PageRequest, Paged, Store};

/// A kind's table, as the shared SQL needs it. Names here are the only identifiers the SQL is built from.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// What the API calls one, for messages.
    pub noun: &'static str,
    /// Vantage's token prefix.
    pub prefix: &'static str,
    /// The kind's own key columns (after the shared ones), written from [`Kind::keys`].
    pub columns: &'static [&'static str],
    /// Its ordered lists of references, each a table of (owner, target, position).
    pub links: &'static [Link],
}

/// One list of references: `table` (`owner`, `target`, `position`).
#[derive(Debug)]
pub struct Link {
    pub table: &'static str,
    pub owner: &'static str,
    pub target: &'static str,
}

/// What a definition holds that the database constrains: one value per [`Table::columns`], one list per
/// [`Table::links`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    pub columns: Vec<Option<String>>,
    pub links: Vec<Vec<String>>,
}

/// A kind of the wing: its token, definition and table.
pub trait Kind: Send + Sync + 'static {
    type Token: From<String> + AsRef<str> + Clone + Send + Sync;
    type Definition: Serialize + DeserializeOwned + Send + Sync;
    const TABLE: &'static Table;
    fn keys(definition: &Self::Definition) -> Keys;
}

/// A reference some table holds to another's tokens: who uses what (named when a delete is refused).
#[derive(Debug)]
pub(crate) struct Reference {
    /// The referencing table and its column holding the owner's token (`token` for a column of the owner's
    /// own table, the link's owner column for a link table).
    pub(crate) table: &'static str,
    pub(crate) owner: &'static str,
    pub(crate) column: &'static str,
    /// The referenced table.
    pub(crate) target: &'static str,
    /// What the owner is called.
    pub(crate) noun: &'static str,
}

/// Every reference to a wing kind or a cost report that blocks a delete (history cascades instead).
pub(crate) const REFERENCES: &[Reference] = &[
    Reference {
        table: "budgets",
        owner: "token",
        column: "cost_report_token",
        target: "report_objects",
        noun: "budget",
    },
    Reference {
        table: "budget_children",
        owner: "budget_token",
        column: "child_token",
        target: "budgets",
        noun: "budget",
    },
    Reference {
        table: "budget_alert_budgets",
        owner: "alert_token",
        column: "budget_token",
        target: "budgets",
        noun: "budget alert",
    },
    Reference {
        table: "cost_alert_reports",
        owner: "alert_token",
        column: "report_token",
        target: "report_objects",
        noun: "cost alert",
    },
    Reference {
        table: "report_notifications",
        owner: "token",
        column: "cost_report_token",
        target: "report_objects",
        noun: "report notification",
    },
    Reference {
        table: "anomaly_notifications",
        owner: "token",
        column: "cost_report_token",
        target: "report_objects",
        noun: "anomaly notification",
    },
];

/// The kinds that raise messages: an account with any of them is judged by the alerts pass.
pub const JUDGED_TABLES: [&str; 4] = ["budget_alerts", "cost_alerts", "report_notifications", "anomaly_notifications"];

pub struct Budgets;
pub struct BudgetAlerts;
pub struct CostAlerts;
pub struct CostAlertEvents;
pub struct ReportNotifications;
pub struct AnomalyNotifications;
pub struct AnomalyAlerts;

/// The users named by `user_tokens`.
const USERS: &str = "user_token";

impl Kind for Budgets {
    type Token = BudgetToken;
    type Definition = BudgetDefinition;
    const TABLE: &'static Table = &Table {
        name: "budgets",
        noun: "budget",
        prefix: BudgetToken::PREFIX,
        columns: &["cost_report_token"],
        links: &[Link { table: "budget_children", owner: "budget_token", target: "child_token" }],
    };
    fn keys(d: &BudgetDefinition) -> Keys {
        Keys { columns: vec![d.cost_report_token.clone()], links: vec![d.child_budget_tokens.clone()] }
    }
}

impl Kind for BudgetAlerts {
    type Token = BudgetAlertToken;
    type Definition = BudgetAlertDefinition;
    const TABLE: &'static Table = &Table {
        name: "budget_alerts",
        noun: "budget alert",
        prefix: BudgetAlertToken::PREFIX,
        columns: &[],
        links: &[
            Link { table: "budget_alert_budgets", owner: "alert_token", target: "budget_token" },
            Link { table: "budget_alert_users", owner: "alert_token", target: USERS },
        ],
    };
    fn keys(d: &BudgetAlertDefinition) -> Keys {
        Keys { columns: vec![], links: vec![d.budget_tokens.clone(), d.user_tokens.clone()] }
    }
}

impl Kind for CostAlerts {
    type Token = CostAlertToken;
    type Definition = CostAlertDefinition;
    const TABLE: &'static Table = &Table {
        name: "cost_alerts",
        noun: "cost alert",
        prefix: CostAlertToken::PREFIX,
        columns: &[],
        links: &[Link { table: "cost_alert_reports", owner: "alert_token", target: "report_token" }],
    };
    fn keys(d: &CostAlertDefinition) -> Keys {
        Keys { columns: vec![], links: vec![d.report_tokens.clone()] }
    }
}

impl Kind for CostAlertEvents {
    type Token = CostAlertEventToken;
    type Definition = EventDefinition;
    const TABLE: &'static Table = &Table {
        name: "cost_alert_events",
        noun: "cost alert event",
        prefix: CostAlertEventToken::PREFIX,
        columns: &["alert_token", "report_token"],
        links: &[],
    };
    fn keys(d: &EventDefinition) -> Keys {
        Keys { columns: vec![Some(d.alert_token.clone()), Some(d.report_token.clone())], links: vec![] }
    }
}

impl Kind for ReportNotifications {
    type Token = ReportNotificationToken;
    type Definition = NotificationDefinition;
    const TABLE: &'static Table = &Table {
        name: "report_notifications",
        noun: "report notification",
        prefix: ReportNotificationToken::PREFIX,
        columns: &["cost_report_token"],
        links: &[Link { table: "report_notification_users", owner: "notification_token", target: USERS }],
    };
    fn keys(d: &NotificationDefinition) -> Keys {
        Keys { columns: vec![Some(d.cost_report_token.clone())], links: vec![d.user_tokens.clone()] }
    }
}

impl Kind for AnomalyNotifications {
    type Token = AnomalyNotificationToken;
    type Definition = AnomalyNotificationDefinition;
    const TABLE: &'static Table = &Table {
        name: "anomaly_notifications",
        noun: "anomaly notification",
        prefix: AnomalyNotificationToken::PREFIX,
        columns: &["cost_report_token"],
        links: &[Link { table: "anomaly_notification_users", owner: "notification_token", target: USERS }],
    };
    fn keys(d: &AnomalyNotificationDefinition) -> Keys {
        Keys { columns: vec![Some(d.cost_report_token.clone())], links: vec![d.user_tokens.clone()] }
    }
}

impl Kind for AnomalyAlerts {
    type Token = AnomalyAlertToken;
    type Definition = AlertDefinition;
    const TABLE: &'static Table = &Table {
        name: "anomaly_alerts",
        noun: "anomaly alert",
        prefix: AnomalyAlertToken::PREFIX,
        columns: &["cost_report_token", "provider", "service", "day"],
        links: &[],
    };
    fn keys(d: &AlertDefinition) -> Keys {
        Keys {
            columns: vec![
                Some(d.cost_report_token.clone()),
                Some(d.provider.clone()),
                Some(d.service.clone()),
                Some(d.day.to_string()),
            ],
            links: vec![],
        }
    }
}

/// A record to write: everything but its token and times, the definition as JSON with its keys.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub workspace_token: String,
    pub title: String,
    pub definition: String,
    pub keys: Keys,
}

/// A record as read, its definition still JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RawRow {
    pub token: String,
    pub workspace_token: String,
    pub title: String,
    pub definition: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Which records of a kind a list reads.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub workspace_token: Option<String>,
    /// Records whose key columns (of [`Table::columns`]) hold these values.
    pub columns: Vec<(&'static str, String)>,
    /// Records whose link list (one of [`Table::links`], by table) names this token.
    pub linked: Option<(&'static str, String)>,
    /// Newest first (events); else oldest first.
    pub newest_first: bool,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written<T> {
    Done(T),
    /// Not written: a record with the same unique key exists (an event or anomaly already recorded).
    Duplicate,
    /// Not written: something it references is gone (deleted since the service checked).
    BrokenReference,
    /// Not written: no such record (an update).
    NotFound,
}

/// What deleting a record (or a cost report) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDeletion {
    Deleted,
    NotFound,
    /// Refused by a foreign key: these (noun, token) use it.
    InUse(Vec<(String, String)>),
}

impl RecordDeletion {
    /// The refusal's sentence (a 409's message).
    pub fn in_use_message(users: &[(String, String)], noun: &str) -> String {
        let named: Vec<String> = users.iter().map(|(n, t)| format!("{n} {t}")).collect();
        format!("the {noun} is in use by {}; change or delete them first", named.join(", "))
    }
}

/// The object-safe part the backends implement; the typed calls below wrap it.
#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    async fn insert_record(
        &self,
        account: &AccountToken,
        table: &'static Table,
        token: &str,
        row: &RawRecord,
    ) -> anyhow::Result<Written<()>>;
    async fn update_record(
        &self,
        account: &AccountToken,
        table: &'static Table,
        token: &str,
        row: &RawRecord,
    ) -> anyhow::Result<Written<()>>;
    async fn get_record(
        &self,
        account: &AccountToken,
        table: &'static Table,
        token: &str,
    ) -> anyhow::Result<Option<RawRow>>;
    async fn list_records(
        &self,
        account: &AccountToken,
        table: &'static Table,
        filter: &RecordFilter,
        page: PageRequest,
    ) -> anyhow::Result<Paged<RawRow>>;
    async fn delete_record(
        &self,
        account: &AccountToken,
        table: &'static Table,
        token: &str,
    ) -> anyhow::Result<RecordDeletion>;
}

fn decode<K: Kind>(row: RawRow) -> anyhow::Result<Record<K::Token, K::Definition>> {
    let definition = serde_json::from_str(&row.definition)
        .map_err(|e| anyhow::anyhow!("{} {} has an unreadable definition: {e}", K::TABLE.noun, row.token))?;
    Ok(Record {
        token: K::Token::from(row.token),
        workspace_token: row.workspace_token,
        title: row.title,
        definition,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn raw<K: Kind>(workspace_token: String, title: String, definition: &K::Definition) -> RawRecord {
    RawRecord {
        workspace_token,
        title,
        definition: serde_json::to_string(definition).expect("plain data serialises"),
        keys: K::keys(definition),
    }
}

/// The most records [`dyn Store::all_records`] reads in one statement.
const ALL_PAGE: u32 = 1000;

impl dyn Store {
    /// One record of kind `K` in `account`.
    pub async fn record<K: Kind>(
        &self,
        account: &AccountToken,
        token: &str,
    ) -> anyhow::Result<Option<Record<K::Token, K::Definition>>> {
        self.get_record(account, K::TABLE, token).await?.map(decode::<K>).transpose()
    }

    /// A page of `account`'s records of kind `K`.
    pub async fn records<K: Kind>(
        &self,
        account: &AccountToken,
        filter: &RecordFilter,
        page: PageRequest,
    ) -> anyhow::Result<Paged<Record<K::Token, K::Definition>>> {
        let found = self.list_records(account, K::TABLE, filter, page).await?;
        Ok(Paged {
            items: found.items.into_iter().map(decode::<K>).collect::<anyhow::Result<_>>()?,
            total: found.total,
        })
    }

    /// Every record of kind `K` the filter passes (read 1,000 at a time).
    pub async fn all_records<K: Kind>(
        &self,
        account: &AccountToken,
        filter: &RecordFilter,
    ) -> anyhow::Result<Vec<Record<K::Token, K::Definition>>> {
        let mut all = Vec::new();
        for page in 1.. {
            let found = self.records::<K>(account, filter, PageRequest { page, limit: ALL_PAGE }).await?;
            let done = found.items.len() < ALL_PAGE as usize;
            all.extend(found.items);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// Writes a new record of kind `K` (with a new token) and reads it back.
    pub async fn create_record<K: Kind>(
        &self,
        account: &AccountToken,
        workspace_token: String,
        title: String,
        definition: &K::Definition,
    ) -> anyhow::Result<Written<Record<K::Token, K::Definition>>> {
        let token = costd_model::token::new_token(K::TABLE.prefix);
        let row = raw::<K>(workspace_token, title, definition);
        match self.insert_record(account, K::TABLE, &token, &row).await? {
            Written::Done(()) => self.read_back::<K>(account, &token).await,
            other => Ok(other.never()),
        }
    }

    /// Replaces a record's workspace, title and definition, and reads it back.
    pub async fn update_record_of<K: Kind>(
        &self,
        account: &AccountToken,
        token: &str,
        workspace_token: String,
        title: String,
        definition: &K::Definition,
    ) -> anyhow::Result<Written<Record<K::Token, K::Definition>>> {
        let row = raw::<K>(workspace_token, title, definition);
        match self.update_record(account, K::TABLE, token, &row).await? {
            Written::Done(()) => self.read_back::<K>(account, token).await,
            other => Ok(other.never()),
        }
    }

    /// Deletes a record of kind `K` (what cascades with it goes too).
    pub async fn delete_record_of<K: Kind>(
        &self,
        account: &AccountToken,
        token: &str,
    ) -> anyhow::Result<RecordDeletion> {
        self.delete_record(account, K::TABLE, token).await
    }

    async fn read_back<K: Kind>(
        &self,
        account: &AccountToken,
        token: &str,
    ) -> anyhow::Result<Written<Record<K::Token, K::Definition>>> {
        match self.record::<K>(account, token).await? {
            Some(r) => Ok(Written::Done(r)),
            // Deleted between the write and the read: as if the write had come second.
            None => Ok(Written::NotFound),
        }
    }
}

impl Written<()> {
    /// A write that did not happen, as any type's.
    fn never<T>(self) -> Written<T> {
        match self {
            Written::Done(()) => unreachable!("only the outcomes that wrote nothing are converted"),
            Written::Duplicate => Written::Duplicate,
            Written::BrokenReference => Written::BrokenReference,
            Written::NotFound => Written::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<K: Kind>(definition: &K::Definition) {
        let keys = K::keys(definition);
        assert_eq!(keys.columns.len(), K::TABLE.columns.len(), "{}", K::TABLE.name);
        assert_eq!(keys.links.len(), K::TABLE.links.len(), "{}", K::TABLE.name);
    }

    #[test]
    fn every_kind_gives_one_key_per_column_and_one_list_per_link() {
        check::<Budgets>(&BudgetDefinition::default());
        check::<BudgetAlerts>(&BudgetAlertDefinition {
            budget_tokens: vec![],
            threshold: 1,
            user_tokens: vec![],
            duration_in_days: None,
            period_to_track: costd_model::budget::PeriodToTrack::EndOfTheMonth,
            recipient_channels: vec![],
            based_on: Default::default(),
        });
        check::<CostAlertEvents>(&EventDefinition {
            alert_token: "cst_alrt_x".into(),
            report_token: "rprt_x".into(),
            description: String::new(),
            metadata: Default::default(),
        });
        check::<ReportNotifications>(&NotificationDefinition {
            cost_report_token: "rprt_x".into(),
            frequency: costd_model::cost_alert::Interval::Day,
            change: costd_model::cost_alert::Change::Dollars,
            user_tokens: vec![],
            recipient_channels: vec![],
        });
        check::<AnomalyNotifications>(&AnomalyNotificationDefinition {
            cost_report_token: "rprt_x".into(),
            threshold: 0,
            user_tokens: vec![],
            recipient_channels: vec![],
        });
    }

    #[test]
    fn every_reference_names_a_table_the_kinds_describe() {
        let tables = [
            Budgets::TABLE,
            BudgetAlerts::TABLE,
            CostAlerts::TABLE,
            CostAlertEvents::TABLE,
            ReportNotifications::TABLE,
            AnomalyNotifications::TABLE,
            AnomalyAlerts::TABLE,
        ];
        for r in REFERENCES {
            let owner_table = tables.iter().any(|t| t.name == r.table && t.columns.contains(&r.column))
                || tables
                    .iter()
                    .flat_map(|t| t.links)
                    .any(|l| l.table == r.table && l.target == r.column && l.owner == r.owner);
            assert!(owner_table, "{r:?}");
        }
    }
}
