//! Where committed upload files live: a directory on this machine (the default) or a bucket of any
//! S3-compatible object store, through the `object_store` crate that DataFusion itself reads with.
//!
//! Both keep one file per upload, `<token>.parquet`, written once and never changed (and, in a sibling
//! storage, `exports/<token>.csv` per finished data export, so any node can serve it). An ingest always writes
//! its temporary file on local disk (`<data-dir>/uploads/<token>.parquet.tmp`); [`Storage::persist`] then
//! makes it permanent in one step nobody can see half of: a rename on a local disk, a single PUT or a
//! completed multipart upload in a bucket (an object only appears once its upload completes). So a file is
//! whole in its store before the upload row naming it commits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ingest::PendingUpload;

/// How to reach an S3-compatible store; what is not given comes from the standard `AWS_*` variables.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// e.g. `http://127.0.0.1:9000` for a store other than AWS (default: `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
    /// Default: `AWS_REGION` or `AWS_DEFAULT_REGION`, else us-east-1.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Where committed upload files live.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `<dir>/<token>.parquet` on this machine.
    Local { dir: PathBuf },
    /// `<prefix>/uploads/<token>.parquet` in a bucket.
    Object {
        store: Arc<dyn ObjectStore>,
        /// `s3://bucket`: the URL DataFusion finds `store` under.
        url: datafusion::execution::object_store::ObjectStoreUrl,
        /// The uploads "directory" inside the bucket.
        prefix: ObjectPath,
    },
}

/// A committed file found in the storage, with how long ago it was written.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub name: String,
    pub age: Duration,
}

impl Storage {
    /// The storage `spec` names (`s3://BUCKET/PREFIX`); `local_dir` when it names none.
    pub fn open(spec: Option<&str>, settings: &S3Options, local_dir: &Path) -> anyhow::Result<Storage> {
        let Some(spec) = spec.filter(|s| !s.is_empty()) else {
            return Ok(Storage::Local { dir: local_dir.to_path_buf() });
        };
        let rest = spec
            .strip_prefix("s3://")
            .with_context(|| format!("--storage must be s3://BUCKET/PREFIX, got {spec:?}"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "--storage {spec:?} names no bucket");

        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = settings.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(endpoint) = endpoint {
            // Path-style requests (`endpoint/bucket/key`): what S3-compatible servers other than AWS expect.
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false)
                .with_endpoint(endpoint);
        }
        let region = settings
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        builder = builder.with_region(region);
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().with_context(|| format!("failed to configure the object store {spec}"))?;
        let url = datafusion::execution::object_store::ObjectStoreUrl::parse(format!("s3://{bucket}"))
            .with_context(|| format!("{bucket:?} is not a valid bucket name"))?;
        let prefix = ObjectPath::from_iter(prefix.split('/').filter(|p| !p.is_empty()).chain(["uploads"]));
        Ok(Storage::Object { store: Arc::new(store), url, prefix })
    }

    /// Where the files are, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Storage::Local { dir } => dir.display().to_string(),
            Storage::Object { url, prefix, .. } => format!("{}{prefix}", url.as_str()),
        }
    }

    /// The storage beside this one named `name` (`<data-dir>/exports` beside `<data-dir>/uploads`;
    /// `<prefix>/exports` beside `<prefix>/uploads`).
    pub fn sibling(&self, name: &str) -> Storage {
        match self {
            Storage::Local { dir } => Storage::Local { dir: dir.parent().unwrap_or(dir).join(name) },
            Storage::Object { store, url, prefix } => {
                let mut parts: Vec<_> = prefix.parts().collect();
                parts.pop();
                parts.push(name.into());
                Storage::Object { store: store.clone(), url: url.clone(), prefix: ObjectPath::from_iter(parts) }
            }
        }
    }

    fn object_path(prefix: &ObjectPath, token: &str) -> ObjectPath {
        Self::named(prefix, &format!("{token}.parquet"))
    }

    fn named(prefix: &ObjectPath, name: &str) -> ObjectPath {
        prefix.clone().join(name)
    }

    /// The file of upload `token`, as DataFusion reads it (a local path, or `s3://bucket/key`).
    pub fn location(&self, token: &str) -> String {
        match self {
            Storage::Local { dir } => dir.join(format!("{token}.parquet")).display().to_string(),
            Storage::Object { url, prefix, .. } => format!("{}{}", url.as_str(), Self::object_path(prefix, token)),
        }
    }

    /// Moves the complete local file `local` into the storage as `name`, whole or not at all.
    pub async fn put_file(&self, local: &Path, name: &str) -> anyhow::Result<()> {
        match self {
            Storage::Local { dir } => {
                tokio::fs::create_dir_all(dir).await.with_context(|| format!("failed to create {}", dir.display()))?;
                let dest = dir.join(name);
                tokio::fs::rename(local, &dest)
                    .await
                    .with_context(|| format!("failed to move {} to {}", local.display(), dest.display()))?;
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
                    .await
                    .context("the sync task failed")?
                    .context("failed to sync the directory")
            }
            Storage::Object { store, prefix, .. } => {
                upload(store, local, Self::named(prefix, name)).await?;
                remove_local(local).await
            }
        }
    }

    /// The bytes of the file `name`, streamed; `None` when there is no such file.
    pub async fn read_named(&self, name: &str) -> anyhow::Result<Option<ByteStream>> {
        match self {
            Storage::Local { dir } => match tokio::fs::File::open(dir.join(name)).await {
                Ok(file) => Ok(Some(Box::pin(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024)))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow::Error::new(e).context(format!("failed to open {name}"))),
            },
            Storage::Object { store, prefix, .. } => match store.get(&Self::named(prefix, name)).await {
                Ok(got) => Ok(Some(Box::pin(got.into_stream().map_err(std::io::Error::other)))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(anyhow::Error::new(e).context(format!("failed to read {name}"))),
            },
        }
    }

    /// Removes the file `name`; one already gone is no error.
    pub async fn remove_named(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Storage::Local { dir } => remove_local(&dir.join(name)).await,
            Storage::Object { store, prefix, .. } => match store.delete(&Self::named(prefix, name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(anyhow::Error::new(e).context(format!("failed to remove {name}"))),
            },
        }
    }

    /// Lets DataFusion's `ctx` read [`Self::location`]s (local paths need nothing).
    pub fn register(&self, ctx: &datafusion::prelude::SessionContext) {
        if let Storage::Object { store, url, .. } = self {
            ctx.register_object_store(url.as_ref(), store.clone());
        }
    }

    /// Makes `pending`'s temporary file the permanent file of upload `token`, whole or not at all, and answers
    /// the names it wrote (the file's and its rollups'). On failure the temporary file goes when `pending`
    /// drops and an unfinished multipart upload is aborted; rollups already stored stay for the caller's
    /// [`Self::remove`].
    pub async fn persist(&self, pending: PendingUpload, token: &str) -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> =
            pending.rollup_paths().map(|(level, _)| format!("{}.parquet", rollup_name(token, level))).collect();
        names.push(format!("{token}.parquet"));
        match self {
            Storage::Local { dir } => {
                let dest = dir.join(format!("{token}.parquet"));
                tokio::task::spawn_blocking(move || pending.persist(&dest))
                    .await
                    .context("the persist task failed")??;
            }
            Storage::Object { store, prefix, .. } => {
                // The rollups first: a file whose upload row names a rollup has it.
                for (level, rollup) in pending.rollup_paths() {
                    upload(store, rollup, Self::object_path(prefix, &rollup_name(token, level))).await?;
                }
                upload(store, pending.path(), Self::object_path(prefix, token)).await?;
                drop(pending);
            }
        }
        Ok(names)
    }

    /// Whether the file `name` is there.
    pub async fn exists_named(&self, name: &str) -> anyhow::Result<bool> {
        match self {
            Storage::Local { dir } => Ok(tokio::fs::try_exists(dir.join(name)).await?),
            Storage::Object { store, prefix, .. } => match store.head(&Self::named(prefix, name)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(anyhow::Error::new(e).context(format!("failed to look up {name}"))),
            },
        }
    }

    /// Every row of upload `token`'s file, as Arrow batches of the cost schema.
    pub async fn read(&self, token: &str) -> anyhow::Result<Vec<RecordBatch>> {
        match self {
            Storage::Local { .. } => {
                let path = PathBuf::from(self.location(token));
                tokio::task::spawn_blocking(move || read_file(&path)).await.context("the read task failed")?
            }
            Storage::Object { store, prefix, .. } => {
                let path = Self::object_path(prefix, token);
                let bytes = store
                    .get(&path)
                    .await
                    .with_context(|| format!("failed to read {path}"))?
                    .bytes()
                    .await
                    .with_context(|| format!("failed to read {path}"))?;
                tokio::task::spawn_blocking(move || batches(bytes)).await.context("the read task failed")?
            }
        }
    }

    /// The discovery catalog of upload `token`'s file.
    pub async fn catalog(&self, token: &str) -> anyhow::Result<super::discovery::Catalog> {
        match self {
            Storage::Local { .. } => {
                let path = PathBuf::from(self.location(token));
                tokio::task::spawn_blocking(move || super::discovery::catalog(&path))
                    .await
                    .context("the catalog task failed")?
            }
            Storage::Object { store, prefix, .. } => {
                let path = Self::object_path(prefix, token);
                let bytes = store.get(&path).await?.bytes().await.with_context(|| format!("failed to read {path}"))?;
                tokio::task::spawn_blocking(move || super::discovery::catalog_from(bytes))
                    .await
                    .context("the catalog task failed")?
            }
        }
    }

    /// Whether upload `token`'s file is there.
    pub async fn exists(&self, token: &str) -> anyhow::Result<bool> {
        self.exists_named(&format!("{token}.parquet")).await
    }

    /// Removes upload `token`'s file and its rollups; one already gone is no error.
    pub async fn remove(&self, token: &str) -> anyhow::Result<()> {
        for level in super::rollup::Level::ALL {
            self.remove_named(&format!("{}.parquet", rollup_name(token, level))).await?;
        }
        self.remove_named(&format!("{token}.parquet")).await
    }

    /// Removes the files (and rollups) of every upload in `tokens`; those already gone are no error. In a
    /// bucket, in bulk requests of up to 1,000 keys (S3's DeleteObjects) rather than a request per key: a
    /// janitor pass after a busy minute removes thousands of files.
    pub async fn remove_all(&self, tokens: &[String]) -> anyhow::Result<()> {
        match self {
            Storage::Local { .. } => {
                for token in tokens {
                    self.remove(token).await?;
                }
                Ok(())
            }
            Storage::Object { store, prefix, .. } => {
                let paths: Vec<object_store::Result<ObjectPath>> = tokens
                    .iter()
                    .flat_map(|token| {
                        super::rollup::Level::ALL
                            .into_iter()
                            .map(|level| Self::object_path(prefix, &rollup_name(token, level)))
                            .chain(std::iter::once(Self::object_path(prefix, token)))
                    })
                    .map(Ok)
                    .collect();
                let mut deleted = store.delete_stream(futures::stream::iter(paths).boxed());
                while let Some(done) = deleted.next().await {
                    match done {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(anyhow::Error::new(e).context("failed to remove upload files")),
                    }
                }
                Ok(())
            }
        }
    }

    /// Every file in the storage (for the janitor), with its age.
    pub async fn list(&self) -> anyhow::Result<Vec<StoredFile>> {
        match self {
            Storage::Local { dir } => list_local(dir).await,
            Storage::Object { store, prefix, .. } => {
                let now = chrono::Utc::now();
                let objects: Vec<_> =
                    store.list(Some(prefix)).try_collect().await.with_context(|| format!("failed to list {prefix}"))?;
                Ok(objects
                    .into_iter()
                    .filter_map(|meta| {
                        let name = meta.location.filename()?.to_string();
                        let age = now.signed_duration_since(meta.last_modified).to_std().unwrap_or_default();
                        Some(StoredFile { name, age })
                    })
                    .collect())
            }
        }
    }
}

/// The name [`Storage::location`] takes for the `level` rollup of upload `token` (`engine::rollup`).
pub fn rollup_name(token: &str, level: super::rollup::Level) -> String {
    format!("{token}{}", level.suffix())
}

/// A file's bytes as they arrive.
pub type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// Writes the local file `local` to `path`: one PUT when small, else a multipart upload that is aborted
/// on failure (the object appears only when complete).
async fn upload(store: &Arc<dyn ObjectStore>, local: &Path, path: ObjectPath) -> anyhow::Result<()> {
    let mut file = tokio::fs::File::open(local).await.with_context(|| format!("failed to open {}", local.display()))?;
    // Parts of 16 MiB, two in flight: an 8 GiB upload stays under S3's 10,000 parts and the memory held per
    // upload small.
    let mut writer =
        object_store::buffered::BufWriter::with_capacity(store.clone(), path.clone(), 16 << 20).with_max_concurrency(2);
    let copied = async {
        tokio::io::copy(&mut file, &mut writer).await?;
        tokio::io::AsyncWriteExt::shutdown(&mut writer).await
    }
    .await;
    if let Err(e) = copied {
        if let Err(abort) = writer.abort().await {
            tracing::warn!(error = %abort, "could not abort an unfinished multipart upload");
        }
        return Err(anyhow::Error::new(e).context(format!("failed to write {path} to the object store")));
    }
    Ok(())
}

/// Every row of a local upload file.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    batches(file)
}

fn batches<R: parquet::file::reader::ChunkReader + 'static>(input: R) -> anyhow::Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(input)?.with_batch_size(64 * 1024).build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Removes a local file; one already gone is no error.
pub async fn remove_local(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("failed to remove {}", path.display())),
    }
}

/// The files of a local directory with their ages (none when it does not exist yet).
pub async fn list_local(dir: &Path) -> anyhow::Result<Vec<StoredFile>> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
    };
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let age = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default())
            .unwrap_or(Duration::MAX);
        files.push(StoredFile { name: entry.file_name().to_string_lossy().to_string(), age });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(spec: &str) -> Storage {
        let settings = S3Options {
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            ..Default::default()
        };
        Storage::open(Some(spec), &settings, Path::new("/data/uploads")).unwrap()
    }

    #[test]
    fn no_storage_setting_means_the_data_dirs_uploads_directory() {
        let local = Storage::open(None, &S3Options::default(), Path::new("/data/uploads")).unwrap();
        assert_eq!(local.location("usr_csts_upld_1"), "/data/uploads/usr_csts_upld_1.parquet");
    }

    #[test]
    fn an_s3_url_names_the_bucket_and_a_prefix_under_which_uploads_live() {
        assert_eq!(s3("s3://costs/prod/eu").location("u1"), "s3://costs/prod/eu/uploads/u1.parquet");
        assert_eq!(s3("s3://costs").location("u1"), "s3://costs/uploads/u1.parquet");
        assert_eq!(s3("s3://costs/").describe(), "s3://costs/uploads");
    }

    #[test]
    fn exports_live_beside_uploads() {
        assert_eq!(s3("s3://costs/prod").sibling("exports").describe(), "s3://costs/prod/exports");
        let local = Storage::Local { dir: PathBuf::from("/data/uploads") };
        assert!(matches!(local.sibling("exports"), Storage::Local { dir } if dir == Path::new("/data/exports")));
    }

    #[test]
    fn other_schemes_and_a_missing_bucket_are_refused_with_the_reason() {
        let open =
            |spec: &str| Storage::open(Some(spec), &S3Options::default(), Path::new("/d")).unwrap_err().to_string();
        assert!(open("gs://bucket").contains("s3://BUCKET/PREFIX"), "{}", open("gs://bucket"));
        assert!(open("s3:///prefix").contains("names no bucket"));
    }
}
