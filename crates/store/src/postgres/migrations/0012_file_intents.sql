-- Files being written to shared storage that no committed row names yet. A writer records its intent here
-- before the first byte of its files reaches the storage, renews the lease while it works, and the commit
-- that names the files deletes the intent in the same transaction. The janitor never removes a file whose
-- intent it can see, and clears an intent whose lease ran out (its writer died) together with its files.
-- service::files explains why this keeps every acknowledged file, whatever the timing.

CREATE TABLE file_intents (
    token TEXT NOT NULL CONSTRAINT pk_file_intents PRIMARY KEY,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- Milliseconds since the Unix epoch, so both stores compare it as a number.
    lease_until_ms BIGINT NOT NULL
);
