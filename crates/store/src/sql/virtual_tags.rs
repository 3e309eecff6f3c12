//! Virtual tags: one row per key, the definition one JSON document (`model::virtual_tag::TagFields`)
//! decoded here, so the store hands out checked definitions.

use chrono::{DateTime, Utc};

use costd_model::token::{AccountToken, VirtualTagToken};
use costd_model::virtual_tag::{TagFields, VirtualTag, VirtualTagDefinition};

pub(crate) const VIRTUAL_TAG_COLUMNS: &str =
    "token, account_token, definition, created_by_token, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct VirtualTagRow {
    token: crate::Text<VirtualTagToken>,
    account_token: crate::Text<AccountToken>,
    definition: String,
    created_by_token: Option<String>,
    pub(crate) version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<VirtualTagRow> for crate::StoredVirtualTag {
    type Error = anyhow::Error;

    fn try_from(r: VirtualTagRow) -> anyhow::Result<Self> {
        let fields: TagFields = serde_json::from_str(&r.definition)
            .map_err(|e| anyhow::anyhow!("virtual tag {} has an unreadable definition: {e}", r.token.0))?;
        let definition = VirtualTagDefinition::try_from(fields).map_err(|problems| {
            anyhow::anyhow!("virtual tag {} has an invalid definition: {}", r.token.0, problems.join("; "))
        })?;
        Ok(crate::StoredVirtualTag {
            version: r.version,
            tag: VirtualTag {
                token: r.token.0,
                account_token: r.account_token.0,
                created_by_token: r.created_by_token,
                definition,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
        })
    }
}

pub(crate) fn definition_json(definition: &VirtualTagDefinition) -> String {
    serde_json::to_string(&TagFields::from(definition)).expect("plain data serialises")
}
