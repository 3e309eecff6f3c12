//! Bucket integrations: where a cloud writes its cost export, and with what credentials costd reads it.
//!
//! `POST /v2/integrations/aws` (costd's, in Vantage's style) and `POST /v2/integrations/azure` (Vantage's
//! `createAzureIntegration` body, plus the export's location) become a [`NewBucketIntegration`] here:
//! an [`ExportLocation`] (stored as JSON, shown by reads) and [`Credentials`] (sealed before they are stored,
//! never shown). A custom endpoint (an S3-compatible store, Azurite) is accepted only when the operator lists
//! its origin in [`AllowedEndpoints`], so one tenant cannot make costd call an address inside the operator's
//! network or a cloud metadata service; without one, the names that go into the default endpoint's host
//! (region, storage account) are checked character by character for the same reason.

use serde::{Deserialize, Serialize};

use super::MAX_TEXT_LEN;

/// The clouds whose exports costd reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Aws,
    Azure,
}

impl Provider {
    /// The integration's `provider`, as `GET /v2/integrations` shows it and filters on.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        match text {
            "aws" => Some(Provider::Aws),
            "azure" => Some(Provider::Azure),
            _ => None,
        }
    }
}

/// Where an export lives. No secret is in it: it is stored as JSON and shown by reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum ExportLocation {
    /// An AWS Data Export (FOCUS or CUR 2.0): `s3://<bucket>/<prefix>/<export_name>/{data,metadata}/…`.
    Aws {
        bucket: String,
        /// Without leading or trailing `/`; empty for an export at the bucket's root.
        prefix: String,
        export_name: String,
        region: String,
        endpoint: Option<Endpoint>,
    },
    /// An Azure Cost Management export: `<container>/<root_folder_path>/…/manifest.json`.
    Azure {
        storage_account: String,
        container: String,
        /// Without leading or trailing `/`; empty for the container's root.
        root_folder_path: String,
        endpoint: Option<Endpoint>,
    },
}

impl ExportLocation {
    pub fn provider(&self) -> Provider {
        match self {
            ExportLocation::Aws { .. } => Provider::Aws,
            ExportLocation::Azure { .. } => Provider::Azure,
        }
    }

    /// The custom endpoint, if the export is not at AWS or Azure themselves.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            ExportLocation::Aws { endpoint, .. } | ExportLocation::Azure { endpoint, .. } => endpoint.as_ref(),
        }
    }

    /// The integration's `account_identifier`: where the export is, in one line.
    pub fn identifier(&self) -> String {
        match self {
            ExportLocation::Aws { bucket, prefix, export_name, .. } => {
                [bucket.as_str(), prefix.as_str(), export_name.as_str()]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("/")
            }
            ExportLocation::Azure { storage_account, container, root_folder_path, .. } => {
                [storage_account.as_str(), container.as_str(), root_folder_path.as_str()]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("/")
            }
        }
    }
}

/// How costd signs in to the bucket. Sealed (`service::secrets`) before it is stored; `Debug` hides secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// An IAM user's access key pair (and a session token for temporary credentials).
    AwsKeys { access_key_id: String, secret_access_key: String, session_token: Option<String> },
    /// The machine's own role or environment: only where the operator allows it.
    AwsAmbient,
    /// The storage account's access key.
    AzureAccountKey { key: String },
    /// A shared access signature (the query string, with or without its leading `?`).
    AzureSas { token: String },
    /// A service principal (Vantage's `tenant`, `app_id`, `password`).
    AzureServicePrincipal { tenant: String, app_id: String, password: String },
}

impl Credentials {
    /// What kind of credentials these are, for reads: never the secret.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::AwsKeys { .. } => "access_key",
            Credentials::AwsAmbient => "ambient",
            Credentials::AzureAccountKey { .. } => "account_key",
            Credentials::AzureSas { .. } => "sas_token",
            Credentials::AzureServicePrincipal { .. } => "service_principal",
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.kind())
    }
}

/// An `http(s)://host[:port][/path]` base URL for a storage API, without credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint(String);

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim().trim_end_matches('/');
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("{text:?} is not an http(s) URL (http://host:port)"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("{text:?} is not an http(s) URL (http://host:port)"));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty()
            || authority.contains('@')
            || rest.contains(['?', '#', ' ', '\\'])
            || !authority.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(format!("{text:?} is not an http(s) URL without credentials, query or fragment"));
        }
        Ok(Endpoint(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `scheme://host:port`, lower-cased: what [`AllowedEndpoints`] compares.
    pub fn origin(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").expect("checked at parse");
        let authority = rest.split('/').next().unwrap_or_default().to_ascii_lowercase();
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && !p.contains(']'));
        if has_port {
            format!("{scheme}://{authority}")
        } else {
            format!("{scheme}://{authority}{default_port}")
        }
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Endpoint::parse(&s)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.0
    }
}

/// What the operator lets integrations reach besides AWS and Azure themselves (`--allow-endpoint`), and
/// whether they may use the machine's own cloud credentials (`--allow-ambient-credentials`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedEndpoints {
    origins: Vec<String>,
    pub ambient_credentials: bool,
}

impl AllowedEndpoints {
    /// From the operator's list of base URLs.
    pub fn parse<S: AsRef<str>>(list: &[S], ambient_credentials: bool) -> Result<AllowedEndpoints, String> {
        let origins = list
            .iter()
            .flat_map(|s| s.as_ref().split(','))
            .filter(|s| !s.trim().is_empty())
            .map(|s| Endpoint::parse(s).map(|e| e.origin()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedEndpoints { origins, ambient_credentials })
    }

    pub fn allows(&self, endpoint: &Endpoint) -> bool {
        self.origins.contains(&endpoint.origin())
    }
}

/// `POST /v2/integrations/aws` as sent.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AwsIntegrationFields {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub export_name: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    /// `access_key_id`, `secret_access_key`, `session_token` (other kinds' fields are not read).
    #[serde(flatten)]
    pub credentials: CredentialFields,
}

/// `POST /v2/integrations/azure` as sent: Vantage's `tenant`, `app_id`, `password` (also accepted with an
/// `azure_` prefix), or an account key or SAS token instead, plus where the export is.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AzureIntegrationFields {
    pub storage_account: Option<String>,
    pub container: Option<String>,
    pub root_folder_path: Option<String>,
    pub endpoint: Option<String>,
    /// A service principal, an `account_key` or a `sas_token` (AWS's fields are not read).
    #[serde(flatten)]
    pub credentials: CredentialFields,
}

/// A valid new bucket integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBucketIntegration {
    pub location: ExportLocation,
    pub credentials: Credentials,
}

/// Longest prefix or folder path accepted.
pub const MAX_PATH_LEN: usize = 512;

fn name_chars(
    field: &str,
    value: &str,
    allowed: impl Fn(u8) -> bool,
    len: std::ops::RangeInclusive<usize>,
) -> Option<String> {
    let ok = len.contains(&value.len()) && value.bytes().all(allowed);
    (!ok).then(|| format!("{field} {value:?} is not a valid name ({}–{} characters)", len.start(), len.end()))
}

fn folder(field: &str, value: Option<String>, errors: &mut Vec<String>) -> String {
    let value = value.unwrap_or_default();
    let trimmed = value.trim().trim_matches('/').to_string();
    if trimmed.len() > MAX_PATH_LEN {
        errors.push(format!("{field} must be at most {MAX_PATH_LEN} characters"));
    } else if trimmed.split('/').any(|part| part.is_empty() || part == "." || part == "..") && !trimmed.is_empty() {
        errors.push(format!("{field} {value:?} has an empty, `.` or `..` part"));
    }
    trimmed
}

fn secret(field: &str, value: Option<String>, errors: &mut Vec<String>) -> Option<String> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.is_empty() => {
            errors.push(format!("{field} must not be blank"));
            None
        }
        Some(v) if v.len() > 4096 => {
            errors.push(format!("{field} must be at most 4096 characters"));
            None
        }
        other => other,
    }
}

fn endpoint(value: Option<String>, allowed: &AllowedEndpoints, errors: &mut Vec<String>) -> Option<Endpoint> {
    let value = value.filter(|v| !v.trim().is_empty())?;
    match Endpoint::parse(&value) {
        Err(e) => {
            errors.push(format!("endpoint: {e}"));
            None
        }
        Ok(e) if !allowed.allows(&e) => {
            errors.push(format!(
                "endpoint {} is not allowed on this server (the operator lists allowed endpoints with \
                 --allow-endpoint)",
                e.as_str()
            ));
            None
        }
        Ok(e) => Some(e),
    }
}

/// The credential fields of a create, or of `PUT /v2/integrations/{token}` rotating them.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialFields {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub tenant: Option<String>,
    pub app_id: Option<String>,
    pub password: Option<String>,
    pub azure_tenant: Option<String>,
    pub azure_app_id: Option<String>,
    pub azure_app_password: Option<String>,
    pub account_key: Option<String>,
    pub sas_token: Option<String>,
}

impl CredentialFields {
    /// Whether any credential is given.
    pub fn any(&self) -> bool {
        [
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
            &self.tenant,
            &self.app_id,
            &self.password,
            &self.azure_tenant,
            &self.azure_app_id,
            &self.azure_app_password,
            &self.account_key,
            &self.sas_token,
        ]
        .iter()
        .any(|f| f.is_some())
    }

    /// New credentials for an integration of `provider` (a rotation): the provider's own kinds only.
    pub fn for_provider(self, provider: Provider, allowed: &AllowedEndpoints) -> Result<Credentials, Vec<String>> {
        let mut errors = Vec::new();
        let foreign: &[(&str, bool)] = match provider {
            Provider::Aws => &[
                ("tenant", self.tenant.is_some() || self.azure_tenant.is_some()),
                ("app_id", self.app_id.is_some() || self.azure_app_id.is_some()),
                ("password", self.password.is_some() || self.azure_app_password.is_some()),
                ("account_key", self.account_key.is_some()),
                ("sas_token", self.sas_token.is_some()),
            ],
            Provider::Azure => &[
                ("access_key_id", self.access_key_id.is_some()),
                ("secret_access_key", self.secret_access_key.is_some()),
                ("session_token", self.session_token.is_some()),
            ],
        };
        for (field, given) in foreign {
            if *given {
                errors.push(format!("{field} is not a credential of an {} integration", provider.as_str()));
            }
        }
        let credentials = match provider {
            Provider::Aws => aws_credentials(self, allowed, &mut errors),
            Provider::Azure => azure_credentials(self, &mut errors),
        };
        match credentials {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }
}

/// An access key pair (with an optional session token), or the machine's own credentials where allowed.
fn aws_credentials(f: CredentialFields, allowed: &AllowedEndpoints, errors: &mut Vec<String>) -> Option<Credentials> {
    let key_id = secret("access_key_id", f.access_key_id, errors);
    let key = secret("secret_access_key", f.secret_access_key, errors);
    let session_token = secret("session_token", f.session_token, errors);
    match (key_id, key) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Some(Credentials::AwsKeys { access_key_id, secret_access_key, session_token })
        }
        (None, None) if allowed.ambient_credentials => Some(Credentials::AwsAmbient),
        (None, None) => {
            errors.push(
                "access_key_id and secret_access_key are required (this server does not lend its own AWS \
                 credentials to integrations)"
                    .into(),
            );
            None
        }
        (Some(_), None) => {
            errors.push("secret_access_key is required with access_key_id".into());
            None
        }
        (None, Some(_)) => {
            errors.push("access_key_id is required with secret_access_key".into());
            None
        }
    }
}

/// Exactly one kind: a service principal (Vantage's `tenant`, `app_id`, `password`), an account key, or a SAS.
fn azure_credentials(f: CredentialFields, errors: &mut Vec<String>) -> Option<Credentials> {
    let tenant = secret("tenant", f.tenant.or(f.azure_tenant), errors);
    let app_id = secret("app_id", f.app_id.or(f.azure_app_id), errors);
    let password = secret("password", f.password.or(f.azure_app_password), errors);
    let account_key = secret("account_key", f.account_key, errors);
    let sas = secret("sas_token", f.sas_token, errors);
    let principal = tenant.is_some() || app_id.is_some() || password.is_some();
    let kinds = usize::from(principal) + usize::from(account_key.is_some()) + usize::from(sas.is_some());
    if kinds > 1 {
        errors.push("give one kind of credentials: tenant, app_id and password; or account_key; or sas_token".into());
        None
    } else if let Some(key) = account_key {
        Some(Credentials::AzureAccountKey { key })
    } else if let Some(token) = sas {
        Some(Credentials::AzureSas { token: token.trim_start_matches('?').to_string() })
    } else {
        match (tenant, app_id, password) {
            (Some(tenant), Some(app_id), Some(password)) => {
                Some(Credentials::AzureServicePrincipal { tenant, app_id, password })
            }
            (t, a, p) => {
                for (field, v) in [("tenant", t.is_some()), ("app_id", a.is_some()), ("password", p.is_some())] {
                    if !v {
                        errors.push(format!("{field} is required (or give account_key or sas_token instead)"));
                    }
                }
                None
            }
        }
    }
}

impl NewBucketIntegration {
    /// Checks an AWS export's fields; a custom endpoint must be one `allowed` lists.
    pub fn aws(f: AwsIntegrationFields, allowed: &AllowedEndpoints) -> Result<NewBucketIntegration, Vec<String>> {
        let mut errors = Vec::new();
        let bucket = super::required_text("bucket", f.bucket, &mut errors).map(|b| b.trim().to_string());
        if let Some(e) = bucket.as_deref().and_then(|b| {
            let e = name_chars(
                "bucket",
                b,
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-',
                3..=63,
            );
            e.or_else(|| {
                (b.starts_with(['.', '-']) || b.ends_with(['.', '-']))
                    .then(|| format!("bucket {b:?} must start and end with a letter or digit"))
            })
        }) {
            errors.push(e);
        }
        let prefix = folder("prefix", f.prefix, &mut errors);
        let export_name = super::required_text("export_name", f.export_name, &mut errors).map(|n| n.trim().to_string());
        if let Some(e) = export_name.as_deref().and_then(|n| {
            name_chars("export_name", n, |c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_', 1..=128)
        }) {
            errors.push(e);
        }
        let region =
            f.region.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).unwrap_or_else(|| "us-east-1".into());
        if let Some(e) =
            name_chars("region", &region, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-', 1..=32)
        {
            errors.push(e);
        }
        let endpoint = endpoint(f.endpoint, allowed, &mut errors);
        let credentials = aws_credentials(f.credentials, allowed, &mut errors);
        match (bucket, export_name, credentials) {
            (Some(bucket), Some(export_name), Some(credentials)) if errors.is_empty() => Ok(NewBucketIntegration {
                location: ExportLocation::Aws { bucket, prefix, export_name, region, endpoint },
                credentials,
            }),
            _ => Err(errors),
        }
    }

    /// Checks an Azure export's fields: exactly one kind of credentials.
    pub fn azure(f: AzureIntegrationFields, allowed: &AllowedEndpoints) -> Result<NewBucketIntegration, Vec<String>> {
        let mut errors = Vec::new();
        let account =
            super::required_text("storage_account", f.storage_account, &mut errors).map(|a| a.trim().to_string());
        if let Some(e) = account
            .as_deref()
            .and_then(|a| name_chars("storage_account", a, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), 3..=24))
        {
            errors.push(e);
        }
        let container = super::required_text("container", f.container, &mut errors).map(|c| c.trim().to_string());
        if let Some(e) = container.as_deref().and_then(|c| {
            name_chars("container", c, |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-', 3..=63)
        }) {
            errors.push(e);
        }
        let root_folder_path = folder("root_folder_path", f.root_folder_path, &mut errors);
        let endpoint = endpoint(f.endpoint, allowed, &mut errors);
        let credentials = azure_credentials(f.credentials, &mut errors);
        match (account, container, credentials) {
            (Some(storage_account), Some(container), Some(credentials)) if errors.is_empty() => {
                Ok(NewBucketIntegration {
                    location: ExportLocation::Azure { storage_account, container, root_folder_path, endpoint },
                    credentials,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A billing period: one calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn parse(text: &str) -> Option<Period> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        (1..=12).contains(&month).then_some(Period { year, month })
    }

    pub fn of(date: chrono::NaiveDate) -> Period {
        use chrono::Datelike;
        Period { year: date.year(), month: date.month() }
    }

    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period { year: self.year - 1, month: 12 }
        } else {
            Period { year: self.year, month: self.month - 1 }
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The name of the integration shown before its first sync, if none is given: where the export is.
pub fn default_name(location: &ExportLocation) -> String {
    let mut name = location.identifier();
    name.truncate(MAX_TEXT_LEN);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedEndpoints {
        AllowedEndpoints::parse(&["http://127.0.0.1:9000"], false).unwrap()
    }

    fn aws() -> AwsIntegrationFields {
        AwsIntegrationFields {
            bucket: Some("billing-exports".into()),
            prefix: Some("/cur/".into()),
            export_name: Some("focus-daily".into()),
            credentials: CredentialFields {
                access_key_id: Some("AKIA".into()),
                secret_access_key: Some("s3cr3t".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_aws_export_is_read_with_its_defaults_and_a_trimmed_prefix() {
        let new = NewBucketIntegration::aws(aws(), &allowed()).unwrap();
        let ExportLocation::Aws { prefix, region, endpoint, .. } = &new.location else { panic!() };
        assert_eq!((prefix.as_str(), region.as_str(), endpoint), ("cur", "us-east-1", &None));
        assert_eq!(new.location.identifier(), "billing-exports/cur/focus-daily");
        assert_eq!(format!("{:?}", new.credentials), "Credentials(access_key, ***)");
    }

    #[test]
    fn an_endpoint_the_operator_did_not_allow_is_refused_by_name() {
        let mut f = aws();
        f.endpoint = Some("http://169.254.169.254".into());
        let e = NewBucketIntegration::aws(f, &allowed()).unwrap_err();
        assert!(e[0].contains("not allowed on this server"), "{e:?}");
        let mut f = aws();
        f.endpoint = Some("http://127.0.0.1:9000/".into());
        assert!(NewBucketIntegration::aws(f, &allowed()).is_ok());
    }

    #[test]
    fn a_region_or_account_that_would_change_the_default_host_is_refused() {
        let mut f = aws();
        f.region = Some("x.evil.example/".into());
        assert!(NewBucketIntegration::aws(f, &allowed()).unwrap_err()[0].starts_with("region"));
        let f = AzureIntegrationFields {
            storage_account: Some("acct.evil".into()),
            container: Some("exports".into()),
            credentials: CredentialFields { account_key: Some("k".into()), ..Default::default() },
            ..Default::default()
        };
        assert!(NewBucketIntegration::azure(f, &allowed()).unwrap_err()[0].starts_with("storage_account"));
    }

    #[test]
    fn aws_without_keys_needs_the_operators_leave() {
        let mut f = aws();
        f.credentials.access_key_id = None;
        f.credentials.secret_access_key = None;
        let e = NewBucketIntegration::aws(f, &allowed()).unwrap_err();
        assert!(e[0].contains("access_key_id and secret_access_key are required"), "{e:?}");
        let mut f = aws();
        f.credentials.access_key_id = None;
        f.credentials.secret_access_key = None;
        let ambient = AllowedEndpoints { ambient_credentials: true, ..allowed() };
        assert_eq!(NewBucketIntegration::aws(f, &ambient).unwrap().credentials, Credentials::AwsAmbient);
    }

    #[test]
    fn azure_takes_vantages_service_principal_fields_or_one_other_kind() {
        let base = || AzureIntegrationFields {
            storage_account: Some("costexports".into()),
            container: Some("exports".into()),
            ..Default::default()
        };
        let mut f = base();
        f.credentials.tenant = Some("t".into());
        f.credentials.app_id = Some("a".into());
        f.credentials.password = Some("p".into());
        assert_eq!(NewBucketIntegration::azure(f, &allowed()).unwrap().credentials.kind(), "service_principal");
        let mut f = base();
        f.credentials.azure_tenant = Some("t".into());
        let e = NewBucketIntegration::azure(f, &allowed()).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        let mut f = base();
        f.credentials.sas_token = Some("?sv=1&sig=x".into());
        f.credentials.account_key = Some("k".into());
        assert!(NewBucketIntegration::azure(f, &allowed()).unwrap_err()[0].starts_with("give one kind"));
        let mut f = base();
        f.credentials.sas_token = Some("?sv=1&sig=x".into());
        assert_eq!(
            NewBucketIntegration::azure(f, &allowed()).unwrap().credentials,
            Credentials::AzureSas { token: "sv=1&sig=x".into() }
        );
    }

    #[test]
    fn rotated_credentials_must_be_the_providers_own_kind() {
        let f = CredentialFields { account_key: Some("k".into()), ..Default::default() };
        assert_eq!(f.for_provider(Provider::Azure, &allowed()).unwrap().kind(), "account_key");
        let f = CredentialFields { account_key: Some("k".into()), ..Default::default() };
        let e = f.for_provider(Provider::Aws, &allowed()).unwrap_err();
        assert!(e[0].starts_with("account_key is not a credential of an aws integration"), "{e:?}");
        let f = CredentialFields { access_key_id: Some("A".into()), ..Default::default() };
        assert!(!f.any() || f.for_provider(Provider::Aws, &allowed()).is_err());
        assert!(!CredentialFields::default().any());
    }

    #[test]
    fn a_location_round_trips_through_its_stored_json_without_secrets() {
        let new = NewBucketIntegration::aws(aws(), &allowed()).unwrap();
        let json = serde_json::to_string(&new.location).unwrap();
        assert!(!json.contains("s3cr3t"));
        assert_eq!(serde_json::from_str::<ExportLocation>(&json).unwrap(), new.location);
    }

    #[test]
    fn endpoints_compare_by_origin_with_default_ports() {
        let e = Endpoint::parse("HTTP://LocalHost/devstoreaccount1");
        assert!(e.is_err(), "scheme must be lower case");
        let e = Endpoint::parse("http://localhost/devstoreaccount1").unwrap();
        assert_eq!(e.origin(), "http://localhost:80");
        assert!(Endpoint::parse("http://user:pw@host").is_err());
        assert!(Endpoint::parse("ftp://host").is_err());
    }

    #[test]
    fn periods_parse_and_step_back_over_a_year() {
        let p = Period::parse("2024-01").unwrap();
        assert_eq!(p.previous().to_string(), "2023-12");
        assert!(Period::parse("2024-13").is_none());
        assert!(Period::parse("2024-1").is_none());
    }
}
