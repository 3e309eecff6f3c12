-- Cost reports, saved filters and folders: one table, as they share their shape (a titled object in a
-- workspace, maybe in a folder, maybe with saved filters) and differ only in their definition, a JSON
-- document read and written whole (model::report).

CREATE TABLE report_objects (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_report_objects_token UNIQUE,
    -- folder | saved_filter | cost_report
    kind TEXT NOT NULL,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    -- A report's folder, a folder's parent. A folder that holds anything is not deleted (the service
    -- answers 409 first; the key makes sure).
    folder_token TEXT REFERENCES report_objects (token),
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_report_objects_account ON report_objects (account_token, kind, id);
CREATE INDEX ix_report_objects_folder ON report_objects (folder_token);

-- The saved filters a report or folder applies, in order; deleting a saved filter takes it off them.
CREATE TABLE report_object_filters (
    object_token TEXT NOT NULL REFERENCES report_objects (token) ON DELETE CASCADE,
    saved_filter_token TEXT NOT NULL REFERENCES report_objects (token) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    CONSTRAINT pk_report_object_filters PRIMARY KEY (object_token, saved_filter_token)
);
CREATE INDEX ix_report_object_filters_filter ON report_object_filters (saved_filter_token);
