-- Segments (docs/segments.md): an account's costs divided into a tree, each segment with the cost report
-- costd generates for it. A parent that has children is not deleted (the service answers 409 first; the
-- key makes sure), nor a report a segment still shows (its segment goes first). segment_trees holds each
-- account's version of its tree: every write bumps it, so a write made from a stale read (two moves that
-- together would make a cycle) is redone, never applied.

CREATE TABLE segments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_segments_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    parent_token TEXT REFERENCES segments (token),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    priority INTEGER NOT NULL,
    track_unallocated BOOLEAN NOT NULL,
    -- A JSON object of the five settings (model::segment::SegmentSettings).
    report_settings TEXT NOT NULL,
    filter TEXT,
    report_token TEXT NOT NULL REFERENCES report_objects (token),
    -- The child costd keeps for its parent's track_unallocated.
    unallocated BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_segments_account ON segments (account_token, id);
CREATE INDEX ix_segments_parent ON segments (parent_token);
CREATE INDEX ix_segments_report ON segments (report_token);

CREATE TABLE segment_trees (
    account_token TEXT PRIMARY KEY REFERENCES accounts (token) ON DELETE CASCADE,
    version BIGINT NOT NULL
);
