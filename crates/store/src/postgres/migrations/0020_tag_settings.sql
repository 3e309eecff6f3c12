-- Whether a provider tag key is hidden or preferred (`PUT /v2/tags`), per account. A virtual tag's key keeps
-- these flags in its own definition (virtual_tags), so a key has one place for them.

CREATE TABLE tag_settings (
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    hidden BOOLEAN NOT NULL,
    preferred BOOLEAN NOT NULL,
    PRIMARY KEY (account_token, tag_key)
);
