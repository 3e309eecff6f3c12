-- Virtual tags (docs/allocation.md): per account, one row per tag key, its ordered values and collapsed
-- keys one JSON document (model::virtual_tag::TagFields), as they are read and written whole. A query
-- computes the tags when it runs, so nothing here is ever copied into cost data.

CREATE TABLE virtual_tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_virtual_tags_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    -- One tag per key in an account: two definitions of one key would make a cost's value depend on
    -- which ran first.
    tag_key TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_by_token TEXT,
    -- Bumped by every write: an update made from a stale read (two PATCHes of values at once) is retried,
    -- never lost.
    version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT uq_virtual_tags_account_key UNIQUE (account_token, tag_key)
);
CREATE INDEX ix_virtual_tags_account ON virtual_tags (account_token, id);
