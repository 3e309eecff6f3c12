-- Files of replaced or deleted uploads. An upload's file is never changed or removed while it is live;
-- replacing or deleting the upload moves its token here in the same transaction, and the janitor removes
-- the file once no query can still read it (engine::uploads explains when that is).

CREATE TABLE retired_uploads (
    token TEXT NOT NULL CONSTRAINT pk_retired_uploads PRIMARY KEY,
    retired_at TIMESTAMPTZ NOT NULL
);
