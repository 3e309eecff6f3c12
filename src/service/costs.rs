//! The costs query as `GET /v2/costs` and `costd query` both run it: which uploads and rules the caller
//! sees, read as one snapshot of the store, computed by the engine (or taken from the result cache).
//!
//! A query sees exactly the uploads that were live when it listed them: their files are immutable and
//! pinned until the query ends (see `engine::uploads`), so a concurrent replace or delete changes the
//! next query's snapshot, never this one's.

use crate::service::ServiceError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::costs::{CostError, CostResult, CostSource, SourceFile};
use crate::engine::rules::compile::RuleStep;
use crate::engine::uploads::UploadFiles;
use crate::model::billing_rule::{RuleColumns, RuleDefinition, RuleFields};
use crate::model::business_metric::{MetricValue, ValueKind};
use crate::model::cost_query::CostQuery;
use crate::model::token::{AccountToken, BusinessMetricToken, IntegrationToken, RuleToken, UploadToken};
use crate::store::{PageRequest, Store, Upload, ValueRange};

impl From<CostError> for ServiceError {
    fn from(e: CostError) -> Self {
        match e {
            CostError::Overflow(msg) => ServiceError::unprocessable(msg),
            CostError::RulesTooLarge(msg) | CostError::NoRate(msg) => ServiceError::unprocessable(msg),
            CostError::Engine(e) => ServiceError::Internal(e),
        }
    }
}

/// What the costs service needs, shared by every query of a process.
#[derive(Clone)]
pub struct CostsContext {
    pub store: crate::store::DynStore,
    pub files: Arc<UploadFiles>,
    pub cache: Arc<ResultCache>,
    /// A query still running after this is stopped (so no query outlives the janitor's grace period).
    pub timeout: Duration,
    /// How many queries each account may run at once.
    pub slots: Arc<QuerySlots>,
}

/// Queries (and exports) each account may run at once on this node: one tenant's burst of heavy queries
/// waits for its own earlier ones instead of taking every engine worker from the others. A query waits
/// for its slot inside its time limit.
pub type QuerySlots = crate::service::slots::AccountSlots;

/// A query's answer.
#[derive(Debug, Clone)]
pub struct CostsAnswer {
    pub result: Arc<CostResult>,
    /// The currency a total of nothing is shown in (the uploads' currency, or USD).
    pub currency: String,
    /// The conversion the workspace applied, and the currencies of the uploads it read (what an invoice
    /// prints the rates of).
    pub conversion: Option<(crate::model::exchange_rate::Conversion, Vec<String>)>,
}

impl CostsAnswer {
    /// The one currency of the answer's costs. Costs in several currencies are refused (422), never added
    /// up: `/v2/costs`, budgets, cost alerts, report summaries, anomalies and forecasts all say so in these
    /// words until exchange rates convert them.
    pub fn single_currency(&self) -> Result<String, ServiceError> {
        match self.result.totals.as_slice() {
            [] => Ok(self.currency.clone()),
            [(currency, _)] => Ok(currency.clone()),
            several => {
                let mut names: Vec<&str> = several.iter().map(|(c, _)| c.as_str()).collect();
                names.sort_unstable();
                Err(ServiceError::unprocessable(format!(
                    "the costs are in several currencies ({}); filter to one, e.g. with a workspace or VQL filter",
                    names.join(", ")
                )))
            }
        }
    }
}

/// What a query reads: the caller's live uploads, pinned until `pins` is dropped, with its rules.
struct Snapshot {
    uploads: Vec<Upload>,
    source: CostSource,
    pins: crate::engine::uploads::Pins,
    /// A managed account's MSP (whose virtual tags, and their metrics, the account's queries apply).
    parent: Option<AccountToken>,
}

async fn snapshot(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
) -> Result<Snapshot, ServiceError> {
    let view = view_of(ctx.store.as_ref(), account, workspace).await?;
    let (uploads, pins) = ctx
        .files
        .list_and_pin(ctx.store.live_uploads(&view.owner, &view.integrations), |uploads: &Vec<Upload>| {
            uploads.iter().map(|u| u.token.to_string()).collect()
        })
        .await?;
    let conversion = match &view.workspace {
        Some(settings) => {
            let writes_currency = view.rules.iter().any(RuleStep::sets_currency);
            let currencies = uploads.iter().map(|u| u.currency.as_str());
            super::exchange_rates::conversion(
                ctx.store.as_ref(),
                account,
                view.parent.as_ref(),
                settings,
                currencies,
                writes_currency,
            )
            .await?
        }
        None => None,
    };
    let source = CostSource {
        // A rule's line items are in the bill's currency (and converted with the rest).
        currency: uploads.first().map(|u| u.currency.clone()).unwrap_or_else(|| "USD".into()),
        one_currency: uploads.windows(2).all(|pair| pair[0].currency == pair[1].currency),
        files: uploads
            .iter()
            .map(|u| SourceFile {
                integration: u.integration_token.to_string(),
                upload: u.token.to_string(),
                rollup_decimals: u.rollup_decimals,
            })
            .collect(),
        storage: Some(ctx.files.storage().clone()),
        rules: view.rules,
        virtual_tags: view.virtual_tags,
        conversion,
        metric_values: Default::default(),
        split_rows: Vec::new(),
    };
    Ok(Snapshot { uploads, source, pins, parent: view.parent })
}

/// The values, in the whole months `query` touches, of the business metrics that the virtual tags it reads
/// split by (each metric the account's own or its MSP's, as the tag naming it is).
async fn metric_values(
    store: &dyn Store,
    account: &AccountToken,
    parent: Option<&AccountToken>,
    source: &CostSource,
    query: &CostQuery,
) -> Result<BTreeMap<String, Vec<MetricValue>>, ServiceError> {
    let used = crate::engine::allocation::used(&source.virtual_tags, query);
    let tokens: BTreeSet<&str> = used.iter().flat_map(|&i| source.virtual_tags[i].metrics()).collect();
    let mut out = BTreeMap::new();
    if tokens.is_empty() {
        return Ok(out);
    }
    let (start, end) = crate::engine::allocation::whole_months(query.start, query.end);
    let range = ValueRange { start: Some(start), end: Some(end), label: None };
    for token in tokens {
        let Some(token) = BusinessMetricToken::parse(token) else { continue };
        for owner in std::iter::once(account).chain(parent) {
            if let Some(values) = store.metric_values(owner, &token, ValueKind::Actual, &range).await? {
                out.insert(token.as_str().to_string(), values);
                break;
            }
        }
    }
    Ok(out)
}

/// The costs `account` sees, for `query`, restricted to `workspace` when given.
#[tracing::instrument(skip_all, fields(account))]
pub async fn costs(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
    query: &CostQuery,
) -> Result<CostsAnswer, ServiceError> {
    costs_with(ctx, account, workspace, query, None).await
}

/// [`costs`] as they would be with `draft` saved: a virtual tag not yet saved (or an edit of a saved one)
/// takes the place of the tag of its key, for this query only. The result is cached under the draft (the
/// cache key holds every tag whole), so previewing never serves or shadows a saved tag's costs.
#[tracing::instrument(skip_all, fields(account))]
pub async fn costs_with_draft(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
    query: &CostQuery,
    draft: &crate::model::virtual_tag::VirtualTagDefinition,
) -> Result<CostsAnswer, ServiceError> {
    costs_with(ctx, account, workspace, query, Some(draft)).await
}

async fn costs_with(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
    query: &CostQuery,
    draft: Option<&crate::model::virtual_tag::VirtualTagDefinition>,
) -> Result<CostsAnswer, ServiceError> {
    // The wait for a slot and the snapshot (which waits for the files gate) count against the time limit.
    let work = async {
        let _slot = ctx.slots.acquire(account).await;
        let Snapshot { uploads, mut source, pins, parent } = snapshot(ctx, account, workspace).await?;
        if let Some(draft) = draft {
            // In the place of the tag of its key (the applied tags hold one per key), else last, as a new tag.
            match source.virtual_tags.iter_mut().find(|t| t.key == draft.key) {
                Some(saved) => *saved = draft.clone(),
                None => source.virtual_tags.push(draft.clone()),
            }
        }
        source.metric_values = metric_values(ctx.store.as_ref(), account, parent.as_ref(), &source, query).await?;
        let key = CacheKey::new(account, workspace, &uploads, &source, query);
        let result = ctx.cache.run(key, &source, query).await?;
        drop(pins);
        // A total of nothing is in the workspace's currency when it converts.
        let currency = source.conversion.as_ref().map_or(source.currency, |c| c.to.clone());
        // The uploads' currencies only matter (to an invoice) when the workspace converts.
        let conversion = source.conversion.map(|c| {
            let mut currencies: Vec<String> = uploads.iter().map(|u| u.currency.clone()).collect();
            currencies.sort_unstable();
            currencies.dedup();
            (c, currencies)
        });
        Ok::<_, ServiceError>(CostsAnswer { result, currency, conversion })
    };
    tokio::time::timeout(ctx.timeout, work).await.map_err(|_| ServiceError::timed_out(ctx.timeout))?
}

/// Writes the costs `account` sees for `query` to the file `out` as CSV, streamed on the query runtime
/// (see [`crate::engine::costs::export_csv`]); answers the rows written.
#[tracing::instrument(skip_all, fields(account))]
pub async fn export(
    ctx: &CostsContext,
    account: &AccountToken,
    workspace: Option<&str>,
    query: &CostQuery,
    out: std::path::PathBuf,
) -> Result<u64, ServiceError> {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let timed_out = |_| ServiceError::timed_out(ctx.timeout);
    let _slot = tokio::time::timeout_at(deadline, ctx.slots.acquire(account)).await.map_err(timed_out)?;
    let Snapshot { mut source, pins, parent, .. } =
        tokio::time::timeout_at(deadline, snapshot(ctx, account, workspace)).await.map_err(timed_out)??;
    source.metric_values = metric_values(ctx.store.as_ref(), account, parent.as_ref(), &source, query).await?;
    let query = query.clone();
    let work = crate::engine::runtime::run(async move {
        let file = std::fs::File::create(&out).map_err(|e| {
            CostError::Engine(anyhow::Error::new(e).context(format!("failed to create {}", out.display())))
        })?;
        let mut writer = std::io::BufWriter::new(file);
        let rows = crate::engine::costs::export_csv(&source, &query, &mut writer).await?;
        let file =
            writer.into_inner().map_err(|e| CostError::Engine(anyhow::anyhow!("failed to write the export: {e}")))?;
        file.sync_all().map_err(|e| CostError::Engine(anyhow::Error::new(e).context("failed to sync the export")))?;
        Ok::<u64, CostError>(rows)
    });
    let rows = tokio::time::timeout_at(deadline, work).await.map_err(timed_out)???;
    drop(pins);
    Ok(rows)
}

/// Whose uploads a caller sees and which rules shape them.
pub(crate) struct View {
    /// The account owning the integrations (a managed account's parent).
    pub owner: AccountToken,
    pub integrations: Vec<IntegrationToken>,
    pub rules: Vec<RuleStep>,
    /// The virtual tags its queries apply (a managed account's: its MSP's and its own).
    pub virtual_tags: Vec<crate::model::virtual_tag::VirtualTagDefinition>,
    /// The settings of the workspace the query shows costs in (the one named, else the account's first).
    pub workspace: Option<crate::model::workspace::WorkspaceSettings>,
    /// A managed account's MSP.
    pub parent: Option<AccountToken>,
}

/// For a managed account: its integrations (owned by its parent) with its rules; for a top-level account:
/// all its integrations (those in `workspace`, or in none, when a workspace is named), raw.
pub(crate) async fn view_of(
    store: &dyn Store,
    account: &AccountToken,
    workspace: Option<&str>,
) -> Result<View, ServiceError> {
    let acct = store.get_account(account).await?.ok_or_else(|| anyhow::anyhow!("no account {account}"))?;
    let settings = match workspace {
        Some(ws) => Some(store.get_workspace(account, ws).await?.ok_or(ServiceError::NotFound("workspace"))?),
        None => store.list_workspaces(account, PageRequest { page: 1, limit: 1 }, None).await?.items.into_iter().next(),
    }
    .map(|w| w.settings);
    match acct.parent_account_token {
        Some(parent) => {
            let managed = store
                .get_managed_account(&parent, account)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a managed account without its parent link"))?;
            let mut rules = Vec::new();
            for row in super::managed_accounts::effective_rules_of(store, &parent, &managed.rule_tokens).await? {
                let token = row.token;
                let rule = RuleDefinition::try_from(RuleFields::from(row.columns))
                    .map_err(|problems| ServiceError::invalid_rule(&token, &problems))?;
                rules.push(RuleStep { token, rule });
            }
            let virtual_tags = super::virtual_tags::applied(store, account, Some(&parent)).await?;
            Ok(View {
                owner: parent.clone(),
                integrations: managed.integration_tokens,
                rules,
                virtual_tags,
                workspace: settings,
                parent: Some(parent),
            })
        }
        None => {
            let mut integrations = Vec::new();
            let mut page = 1;
            loop {
                let found = store.list_integrations(account, PageRequest { page, limit: 1000 }, None, None).await?;
                let done = found.items.len() < 1000;
                integrations.extend(
                    found
                        .items
                        .into_iter()
                        // An integration in no workspace shows in every workspace.
                        .filter(|i| {
                            workspace.is_none_or(|ws| {
                                i.workspace_tokens.is_empty() || i.workspace_tokens.iter().any(|w| w == ws)
                            })
                        })
                        .map(|i| i.token),
                );
                if done {
                    break;
                }
                page += 1;
            }
            let virtual_tags = super::virtual_tags::applied(store, account, None).await?;
            Ok(View {
                owner: account.clone(),
                integrations,
                rules: Vec::new(),
                virtual_tags,
                workspace: settings,
                parent: None,
            })
        }
    }
}

/// Everything a result depends on, compared whole on every hit (never reduced to a hash alone): the
/// tenant, the upload files (immutable, so their tokens name their content), each rule with every field,
/// and every query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    account: AccountToken,
    workspace: Option<String>,
    /// (integration, upload) per file, in scan order.
    uploads: Vec<(IntegrationToken, UploadToken)>,
    /// Each rule's token and stored fields, in run order.
    rules: Vec<(RuleToken, RuleColumns)>,
    /// Every virtual tag applied, whole and in order: a changed tag is a new key.
    virtual_tags: Vec<crate::model::virtual_tag::VirtualTagDefinition>,
    /// The workspace's currency and every rate it converts with: a new rate is a new key.
    conversion: Option<crate::model::exchange_rate::Conversion>,
    /// The values of every business metric a split reads: a new value is a new key.
    metric_values: BTreeMap<String, Vec<MetricValue>>,
    query: CostQuery,
}

impl CacheKey {
    fn new(
        account: &AccountToken,
        workspace: Option<&str>,
        uploads: &[Upload],
        source: &CostSource,
        query: &CostQuery,
    ) -> CacheKey {
        CacheKey {
            account: account.clone(),
            workspace: workspace.map(str::to_string),
            uploads: uploads.iter().map(|u| (u.integration_token.clone(), u.token.clone())).collect(),
            rules: source.rules.iter().map(|step| (step.token.clone(), RuleColumns::from(&step.rule))).collect(),
            virtual_tags: source.virtual_tags.clone(),
            conversion: source.conversion.clone(),
            metric_values: source.metric_values.clone(),
            query: query.clone(),
        }
    }
}

/// Results of recent queries. A change to anything a result depends on is a new key, so nothing is ever
/// invalidated by hand and nothing stale can be served. Bounded by the memory the results hold (one heavy
/// query's result is tens of MB): the oldest go first, and a result larger than a quarter of the budget is
/// served but not kept.
pub struct ResultCache {
    budget: usize,
    inner: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    entries: HashMap<CacheKey, (Arc<CostResult>, usize)>,
    /// Keys oldest first.
    order: std::collections::VecDeque<CacheKey>,
    bytes: usize,
}

/// The memory the result cache may hold by default.
pub const DEFAULT_RESULT_CACHE_BYTES: usize = 256 << 20;

impl Default for ResultCache {
    fn default() -> Self {
        ResultCache::with_budget(DEFAULT_RESULT_CACHE_BYTES)
    }
}

impl ResultCache {
    /// A cache holding results of at most `budget` bytes together.
    pub fn with_budget(budget: usize) -> ResultCache {
        ResultCache { budget, inner: Mutex::default() }
    }

    /// The result for `key`, from the cache or computed from `source` and `query`.
    pub async fn run(
        &self,
        key: CacheKey,
        source: &CostSource,
        query: &CostQuery,
    ) -> Result<Arc<CostResult>, CostError> {
        if let Some((hit, _)) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).entries.get(&key) {
            return Ok(hit.clone());
        }
        let (source, query) = (source.clone(), query.clone());
        let computed = crate::engine::runtime::run(async move { crate::engine::costs::run(&source, &query).await });
        let result = Arc::new(computed.await??);
        self.keep(key, result.clone());
        Ok(result)
    }

    fn keep(&self, key: CacheKey, result: Arc<CostResult>) {
        let size = result.approx_bytes();
        if size > self.budget / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.entries.contains_key(&key) {
            return;
        }
        while inner.bytes + size > self.budget {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some((_, freed)) = inner.entries.remove(&oldest) {
                inner.bytes -= freed;
            }
        }
        inner.bytes += size;
        inner.order.push_back(key.clone());
        inner.entries.insert(key, (result, size));
    }

    /// How many results are cached.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// About how many bytes the cached results hold.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cost_query::{Aggregate, DateBin, Settings};

    fn upload(integration: &str, token: &str) -> Upload {
        Upload {
            token: token.into(),
            integration_token: integration.into(),
            filename: "f.csv".into(),
            amount: crate::model::amount::Amount::parse("amount", "1.0").unwrap(),
            currency: "USD".into(),
            rows: 1,
            start_date: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end_date: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            import_status: "complete".into(),
            created_by_token: "usr_1".into(),
            created_at: chrono::Utc::now(),
            rollup_decimals: None,
        }
    }

    fn query(filter: Option<&str>) -> CostQuery {
        CostQuery {
            start: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2024, 7, 31).unwrap(),
            groupings: vec!["service".parse().unwrap()],
            date_bin: DateBin::Month,
            descending: true,
            settings: Settings::default(),
            aggregate: Aggregate::Cost,
            filter: filter.map(|f| crate::model::vql::Filter::parse(f).unwrap()),
            segment: None,
        }
    }

    #[test]
    fn the_cache_key_covers_tenant_uploads_and_every_query_parameter() {
        let source = CostSource::default();
        let uploads = [upload("accss_crdntl_a", "usr_csts_upld_1")];
        let base = CacheKey::new(&"acct_1".into(), None, &uploads, &source, &query(None));
        assert_eq!(base, CacheKey::new(&"acct_1".into(), None, &uploads, &source, &query(None)));
        assert_ne!(base, CacheKey::new(&"acct_2".into(), None, &uploads, &source, &query(None)), "another tenant");
        assert_ne!(base, CacheKey::new(&"acct_1".into(), Some("wrkspc_1"), &uploads, &source, &query(None)));
        let replaced = [upload("accss_crdntl_a", "usr_csts_upld_2")];
        assert_ne!(base, CacheKey::new(&"acct_1".into(), None, &replaced, &source, &query(None)), "a replaced upload");
        let moved = [upload("accss_crdntl_b", "usr_csts_upld_1")];
        assert_ne!(base, CacheKey::new(&"acct_1".into(), None, &moved, &source, &query(None)));
        let filtered = query(Some("costs.service = 'EC2'"));
        assert_ne!(base, CacheKey::new(&"acct_1".into(), None, &uploads, &source, &filtered));
        // The key is the query itself: the same filter spaced or prefixed differently is the same query,
        // a different value is not.
        let respelled = query(Some("service='EC2'"));
        assert_eq!(
            CacheKey::new(&"acct_1".into(), None, &uploads, &source, &filtered),
            CacheKey::new(&"acct_1".into(), None, &uploads, &source, &respelled)
        );
        let other = query(Some("costs.service = 'ec2'"));
        assert_ne!(
            CacheKey::new(&"acct_1".into(), None, &uploads, &source, &filtered),
            CacheKey::new(&"acct_1".into(), None, &uploads, &source, &other)
        );
        let mut tagged = query(None);
        tagged.groupings.push("tag:team".parse().unwrap());
        assert_ne!(base, CacheKey::new(&"acct_1".into(), None, &uploads, &source, &tagged));
        let mut credits = query(None);
        credits.settings.include_credits = true;
        assert_ne!(base, CacheKey::new(&"acct_1".into(), None, &uploads, &source, &credits));
    }

    #[test]
    fn the_cache_key_covers_every_field_of_every_rule() {
        let step = |pct: i64| RuleStep {
            token: "bllng_rule_1".into(),
            rule: RuleDefinition::try_from(
                serde_json::from_value::<RuleFields>(
                    serde_json::json!({"type": "adjustment", "title": "t", "percentage": pct}),
                )
                .unwrap(),
            )
            .unwrap(),
        };
        let key = |pct| {
            let source = CostSource { rules: vec![step(pct)], ..CostSource::default() };
            CacheKey::new(&"acct_1".into(), None, &[], &source, &query(None))
        };
        assert_eq!(key(75), key(75));
        assert_ne!(key(75), key(76), "an edited rule keeps its token but changes the key");
    }

    #[test]
    fn the_result_cache_is_bounded_by_the_memory_its_results_hold() {
        let result = |rows: usize| {
            let row = crate::engine::costs::CostRow {
                accrued_at: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
                amount: crate::model::amount::Amount::ZERO,
                currency: "USD".into(),
                dimensions: vec![("service".into(), Some("x".repeat(100)))],
                usage: None,
            };
            Arc::new(CostResult { rows: vec![row; rows], totals: vec![], usage_totals: vec![] })
        };
        let one = result(1000).approx_bytes();
        assert!(one > 1000 * 100, "{one}");
        let cache = ResultCache::with_budget(one * 10);
        let key = |i: u32| {
            let mut q = query(None);
            q.start += chrono::Duration::days(i.into());
            CacheKey::new(&"acct_1".into(), None, &[], &CostSource::default(), &q)
        };
        for i in 0..25 {
            cache.keep(key(i), result(1000));
            assert!(cache.bytes() <= one * 10, "{} > {}", cache.bytes(), one * 10);
        }
        assert_eq!(cache.len(), 10);
        // The newest stay; a result over a quarter of the budget is never kept.
        assert!(cache.inner.lock().unwrap().entries.contains_key(&key(24)));
        assert!(!cache.inner.lock().unwrap().entries.contains_key(&key(0)));
        cache.keep(key(99), result(3000));
        assert!(!cache.inner.lock().unwrap().entries.contains_key(&key(99)));
    }
}
