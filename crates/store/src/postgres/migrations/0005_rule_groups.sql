-- Each rule's group (cost insert, transform, monthly insert) is kept when it is saved, so nobody parses its
-- SQL again to order a managed account's rules. Custom rules saved before this stay NULL and are worked out
-- once when read.

ALTER TABLE billing_rules ADD COLUMN rule_group TEXT;
UPDATE billing_rules SET rule_group = CASE WHEN rule_type IN ('Credit', 'Charge') THEN 'monthly_insert' ELSE 'transform' END
WHERE rule_type <> 'Custom';
