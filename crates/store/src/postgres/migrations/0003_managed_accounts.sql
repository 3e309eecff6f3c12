-- Managed accounts (an MSP's customers): accounts with a parent, the parent's integrations whose costs
-- they see, and the parent's billing rules that shape those costs, in execution order.

ALTER TABLE accounts ADD COLUMN contact_email TEXT;
ALTER TABLE accounts ADD COLUMN email_domain TEXT;

CREATE TABLE managed_account_integrations (
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    integration_token TEXT NOT NULL REFERENCES integrations (token) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (account_token, integration_token)
);

-- Deleting a rule detaches it from every managed account (ON DELETE CASCADE).
CREATE TABLE managed_account_rules (
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    rule_token TEXT NOT NULL REFERENCES billing_rules (token) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (account_token, rule_token)
);
