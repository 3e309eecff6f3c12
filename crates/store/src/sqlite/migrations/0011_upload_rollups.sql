-- An upload's rollup file (daily sums by its low-cardinality dimensions, `<token>.rollup.parquet`) and the
-- most decimal places any of its amounts has: NULL when the upload has no rollup (older uploads, or too
-- many distinct dimension values for one to pay).
ALTER TABLE cost_uploads ADD COLUMN rollup_decimals INTEGER;
