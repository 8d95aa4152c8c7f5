//! Turns the `[sink] url` into an object store and a root prefix inside it.
//!
//! Accepted forms:
//!
//! - a local path, relative or absolute (`./data`, `/var/lib/rtcq`): created if missing,
//!   then canonicalized;
//! - `file:///abs/path` (percent-escapes in the path are decoded);
//! - `s3://bucket` or `s3://bucket/prefix`: the store is built from the `AWS_*`
//!   environment (as `AmazonS3Builder::from_env` reads it), then [`StoreOptions`]
//!   override endpoint and region. The endpoint is, in order: `StoreOptions::endpoint`,
//!   `AWS_ENDPOINT`, `AWS_ENDPOINT_URL`. Plain `http` is allowed when `AWS_ALLOW_HTTP=true`
//!   or the endpoint is on loopback. Path-style requests unless
//!   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`.
//!
//! Local roots are opened with `object_store`'s fsync mode on, so every staged write is
//! flushed before its rename and every rename is followed by a directory fsync; the
//! [`SinkRoot::local_dir`] flag tells the writer to add its own fsync and sweep steps.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::error::SinkError;

/// Overrides from the pipeline's `[sink]` table (else the environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// S3 endpoint, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// S3 region, e.g. `eu-west-1`.
    pub region: Option<String>,
}

/// An opened sink: the store, the root prefix inside it, and whether it is a local
/// directory.
#[derive(Clone)]
pub struct SinkRoot {
    store: Arc<dyn ObjectStore>,
    root: Path,
    local: Option<LocalRoot>,
    display: String,
    /// On S3: the bucket and where its credentials come from, to check them before use.
    s3: Option<S3Access>,
}

/// How an S3 sink signs: its bucket, its endpoint and the credential provider the
/// environment chose.
#[derive(Clone)]
struct S3Access {
    bucket: String,
    endpoint: Option<String>,
    source: &'static str,
    credentials: object_store::aws::AwsCredentialProvider,
}

/// How long the credential check waits (the instance metadata service may not answer).
const CREDENTIAL_CHECK: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Clone)]
struct LocalRoot {
    dir: PathBuf,
    fs: Arc<LocalFileSystem>,
}

impl fmt::Debug for SinkRoot {
    // The store's own Debug is not shown: it may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkRoot")
            .field("url", &self.display)
            .field("root", &self.root.as_ref())
            .field("local_dir", &self.local.as_ref().map(|l| &l.dir))
            .finish()
    }
}

impl SinkRoot {
    /// The object store holding the dataset (and the `_state/` files).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The prefix of the dataset inside the store (empty for local roots, whose store is
    /// already rooted at the directory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical directory of a local root; `None` on S3.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local.as_ref().map(|l| l.dir.as_path())
    }

    /// Whether the root is a local directory (writes need fsync, leftovers need sweeping).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The URL as given, with any user-info removed: safe for logs and errors.
    pub(crate) fn url(&self) -> &str {
        &self.display
    }

    /// An object key as the user finds it: `s3://bucket/key` on S3, the key elsewhere.
    pub(crate) fn locate(&self, key: &str) -> String {
        match &self.s3 {
            Some(s3) => format!("s3://{}/{key}", s3.bucket),
            None => key.to_string(),
        }
    }

    /// A store error's text with what to check, on S3: the endpoint when it could not
    /// be reached, the bucket when it is not there.
    pub(crate) fn explain(&self, reason: String) -> String {
        let Some(s3) = &self.s3 else {
            return reason;
        };
        let endpoint = s3.endpoint.as_deref().unwrap_or("the AWS default endpoint");
        let lower = reason.to_ascii_lowercase();
        if lower.contains("error sending request") || lower.contains("connect") {
            format!(
                "{reason}; the S3 endpoint {endpoint} did not answer: check [sink] endpoint (or AWS_ENDPOINT) and the network"
            )
        } else if lower.contains("nosuchbucket") || lower.contains("not found") {
            format!(
                "{reason}; check that bucket {:?} exists at {endpoint}",
                s3.bucket
            )
        } else {
            reason
        }
    }

    /// Proves an S3 sink has usable credentials before anything is read or written, so
    /// that a missing role or key is a config error naming the bucket, not a storage
    /// failure naming a metadata URL. Local sinks need none.
    pub async fn check_credentials(&self) -> Result<(), SinkError> {
        let Some(s3) = &self.s3 else {
            return Ok(());
        };
        let fail = |reason: String| SinkError::Credentials {
            bucket: s3.bucket.clone(),
            reason,
        };
        match tokio::time::timeout(CREDENTIAL_CHECK, s3.credentials.get_credential()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(fail(format!("{} gave none ({e})", s3.source))),
            Err(_) => Err(fail(format!(
                "{} did not answer within {} s",
                s3.source,
                CREDENTIAL_CHECK.as_secs()
            ))),
        }
    }

    /// The file-system path of an object under a local root; `None` on S3.
    pub(crate) fn local_path(&self, location: &Path) -> Option<PathBuf> {
        let local = self.local.as_ref()?;
        local.fs.path_to_filesystem(location).ok()
    }
}

const FORMS: &str = "give a local path such as ./data, file:///absolute/path or s3://bucket/prefix";

/// Opens the sink at `url`. No network access happens here; S3 credentials are resolved
/// on first use.
pub fn open(url: &str, opts: &StoreOptions) -> Result<SinkRoot, SinkError> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    open_with_env(url, opts, &env)
}

/// [`open`] with the `AWS_*` environment given explicitly (for tests).
pub fn open_with_env(
    url: &str,
    opts: &StoreOptions,
    env: &[(String, String)],
) -> Result<SinkRoot, SinkError> {
    let shown = redact(url);
    let bad = |reason: String| SinkError::Url {
        url: shown.clone(),
        reason,
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(bad(format!("is empty: {FORMS}")));
    }
    if let Some(rest) = trimmed.strip_prefix("s3://") {
        return open_s3(rest, opts, env, &shown);
    }
    if let Some(rest) = trimmed.strip_prefix("file://") {
        let path = match rest.strip_prefix("localhost") {
            Some(p) => p,
            None => rest,
        };
        if !path.starts_with('/') {
            return Err(bad(format!(
                "a file URL needs an absolute path after file:// (file:///data/rtcq): {FORMS}"
            )));
        }
        if path.contains(['?', '#']) {
            return Err(bad(format!(
                "a file URL cannot have a query or fragment: {FORMS}"
            )));
        }
        let decoded = percent_decode(path).ok_or_else(|| {
            bad("has a percent-escape that is not valid UTF-8: write the path plainly".into())
        })?;
        return open_local(PathBuf::from(decoded), shown);
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(bad(format!(
            "the scheme {scheme:?} is not supported: {FORMS}"
        )));
    }
    open_local(PathBuf::from(trimmed), shown)
}

/// [`open`] for commands that only read (`plan`, `status`): a local folder that does not
/// exist yet is not created, and reads as an empty sink (a pipeline that never ran).
pub fn open_to_read(url: &str, opts: &StoreOptions) -> Result<SinkRoot, SinkError> {
    let trimmed = url.trim();
    let local = if trimmed.contains("://") {
        trimmed
            .strip_prefix("file://")
            .map(|p| p.strip_prefix("localhost").unwrap_or(p))
            .and_then(percent_decode)
    } else {
        Some(trimmed.to_string())
    };
    match local {
        Some(path) if !trimmed.is_empty() && !std::path::Path::new(&path).exists() => {
            Ok(SinkRoot {
                store: Arc::new(object_store::memory::InMemory::new()),
                root: Path::ROOT,
                local: None,
                display: redact(url),
                s3: None,
            })
        }
        _ => open(url, opts),
    }
}

fn open_local(path: PathBuf, display: String) -> Result<SinkRoot, SinkError> {
    std::fs::create_dir_all(&path).map_err(|source| SinkError::LocalDir {
        path: path.clone(),
        action: "create the directory",
        source,
    })?;
    let dir = std::fs::canonicalize(&path).map_err(|source| SinkError::LocalDir {
        path: path.clone(),
        action: "resolve the directory",
        source,
    })?;
    let fs = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| SinkError::Url {
            url: display.clone(),
            reason: format!("cannot use {} as a store root: {e}", dir.display()),
        })?
        .with_fsync(true);
    let fs = Arc::new(fs);
    Ok(SinkRoot {
        store: fs.clone(),
        root: Path::ROOT,
        local: Some(LocalRoot { dir, fs }),
        display,
        s3: None,
    })
}

fn open_s3(
    rest: &str,
    opts: &StoreOptions,
    env: &[(String, String)],
    shown: &str,
) -> Result<SinkRoot, SinkError> {
    let bad = |reason: String| SinkError::Url {
        url: shown.to_string(),
        reason,
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.contains('@') {
        return Err(bad(
            "credentials in the URL are not accepted: give them in AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (or a profile or role) and write s3://bucket/prefix"
                .into(),
        ));
    }
    check_bucket(bucket).map_err(|r| bad(format!("{r}: write s3://bucket/prefix")))?;
    if rest.contains(['?', '#']) {
        return Err(bad(
            "an S3 URL cannot have a query or fragment: write s3://bucket/prefix".into(),
        ));
    }
    let root = Path::parse(prefix).map_err(|e| {
        bad(format!(
            "the prefix {prefix:?} is not a clean key prefix ({e}): use segments without \
             '//', '.' or '..'"
        ))
    })?;
    // reqwest is built without a default TLS provider and panics without one; installing
    // ring here is a no-op when the binary already did it at start-up.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let source = credential_source(env).map_err(|reason| SinkError::Credentials {
        bucket: bucket.to_string(),
        reason,
    })?;
    let builder = s3_builder(bucket, opts, env);
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .map(|e| redact(&e));
    let store = builder
        .build()
        .map_err(|e| bad(format!("cannot configure S3: {e}")))?;
    let credentials = store.credentials().clone();
    Ok(SinkRoot {
        store: Arc::new(store),
        root,
        local: None,
        display: shown.to_string(),
        s3: Some(S3Access {
            bucket: bucket.to_string(),
            endpoint,
            source,
            credentials,
        }),
    })
}

/// Which source object_store will take S3 credentials from, read from the same
/// variables in the same order; an error when none can give any.
fn credential_source(env: &[(String, String)]) -> Result<&'static str, String> {
    let var = |name: &str| env_var(env, name);
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(_), Some(_)) => return Ok("AWS_ACCESS_KEY_ID"),
        (Some(_), None) => {
            return Err(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both".into(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both".into(),
            );
        }
        (None, None) => {}
    }
    if var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && var("AWS_ROLE_ARN").is_some() {
        return Ok("the web identity (AWS_WEB_IDENTITY_TOKEN_FILE)");
    }
    if var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || (var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
            && var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").is_some())
    {
        return Ok("the container credentials endpoint");
    }
    if var("AWS_EC2_METADATA_DISABLED").is_some_and(is_true) {
        let profile = if var("AWS_PROFILE").is_some() {
            " (AWS_PROFILE is set, but profiles are not read: export its keys, e.g. `eval \"$(aws configure export-credentials --format env)\"`)"
        } else {
            ""
        };
        return Err(format!(
            "none is set and AWS_EC2_METADATA_DISABLED=true rules out the instance metadata service{profile}"
        ));
    }
    Ok("the instance metadata service")
}

/// The S3 builder: the `AWS_*` variables as `from_env` applies them, then the explicit
/// overrides described in the module docs.
fn s3_builder(bucket: &str, opts: &StoreOptions, env: &[(String, String)]) -> AmazonS3Builder {
    let var = |name: &str| env_var(env, name);
    let mut b = AmazonS3Builder::new();
    for (k, v) in env {
        if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            // TLS certificates are always verified: `AWS_ALLOW_INVALID_CERTIFICATES` is
            // not passed on.
            if key
                == AmazonS3ConfigKey::Client(
                    object_store::ClientConfigKey::AllowInvalidCertificates,
                )
            {
                tracing::warn!(
                    "AWS_ALLOW_INVALID_CERTIFICATES is ignored: rtcq always verifies TLS certificates"
                );
                continue;
            }
            b = b.with_config(key, v);
        }
    }
    let endpoint = opts
        .endpoint
        .as_deref()
        .or_else(|| var("AWS_ENDPOINT"))
        .or_else(|| var("AWS_ENDPOINT_URL"));
    if let Some(ep) = endpoint {
        b = b.with_endpoint(ep);
    }
    if let Some(region) = opts.region.as_deref() {
        b = b.with_region(region);
    }
    let loopback_http = endpoint.is_some_and(crate::domain::endpoint::is_loopback_http);
    let allow_http = var("AWS_ALLOW_HTTP").is_some_and(is_true) || loopback_http;
    let virtual_hosted = var("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some_and(is_true);
    b.with_allow_http(allow_http)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_bucket_name(bucket)
}

/// The non-empty value of `name` among the `AWS_*` variables `env` holds.
fn env_var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn is_true(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v == "1"
}

/// S3 bucket naming rules: 3 to 63 characters of `a-z`, `0-9`, `.` and `-`, starting and
/// ending with a letter or digit.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("has no bucket".into());
    }
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !ok_chars
        || !ends_ok(bucket.bytes().next())
        || !ends_ok(bucket.bytes().last())
    {
        return Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 of a-z, 0-9, '.', '-', starting and \
             ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// The URL with any `user:password@` part replaced by `***@`, for errors and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                char::from(b[i + 1]).to_digit(16),
                char::from(b[i + 2]).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s3(url: &str, opts: &StoreOptions, vars: &[(&str, &str)]) -> Result<SinkRoot, SinkError> {
        open_with_env(url, opts, &env(vars))
    }

    fn cfg(
        bucket: &str,
        opts: &StoreOptions,
        vars: &[(&str, &str)],
        key: AmazonS3ConfigKey,
    ) -> Option<String> {
        s3_builder(bucket, opts, &env(vars)).get_config_value(&key)
    }

    #[test]
    fn local_relative_path_is_created_and_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let want = tmp.path().canonicalize().unwrap().join("a/b");
        let url = format!("{}/x/../a/b", tmp.path().display());
        let root = open(&url, &StoreOptions::default()).unwrap();
        assert_eq!(root.local_dir(), Some(want.as_path()));
        assert!(root.is_local());
        assert!(want.is_dir());
        assert_eq!(root.root().as_ref(), "");
        let file_url = format!("file://{}", want.display()).replace("/a/b", "/a/%62");
        let root = open(&file_url, &StoreOptions::default()).unwrap();
        assert_eq!(root.local_dir(), Some(want.as_path()));
        assert_eq!(
            root.local_path(&Path::parse("app_id=a%2Fb/x.parquet").unwrap()),
            Some(want.join("app_id=a%2Fb/x.parquet"))
        );
    }

    #[test]
    fn s3_url_gives_bucket_and_prefix() {
        let vars = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "sekrit"),
        ];
        let root = s3(
            "s3://my-bucket/rtc/quality/",
            &StoreOptions::default(),
            &vars,
        )
        .unwrap();
        assert!(!root.is_local());
        assert_eq!(root.local_dir(), None);
        assert_eq!(root.root().as_ref(), "rtc/quality");
        let root = s3("s3://my-bucket", &StoreOptions::default(), &vars).unwrap();
        assert_eq!(root.root().as_ref(), "");
        let shown = format!("{root:?} {}", root.store());
        assert!(
            !shown.contains("sekrit") && !shown.contains("AKIDEXAMPLE"),
            "{shown}"
        );
    }

    #[test]
    fn s3_endpoint_precedence_and_flags() {
        use AmazonS3ConfigKey::*;
        let none = StoreOptions::default();
        let both = [
            ("AWS_ENDPOINT_URL", "http://url:1"),
            ("AWS_ENDPOINT", "http://ep:2"),
        ];
        assert_eq!(
            cfg("b-1", &none, &both, Endpoint).as_deref(),
            Some("http://ep:2")
        );
        let url_only = [("AWS_ENDPOINT_URL", "http://url:1")];
        assert_eq!(
            cfg("b-1", &none, &url_only, Endpoint).as_deref(),
            Some("http://url:1")
        );
        let opts = StoreOptions {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
        };
        let with_region = [("AWS_ENDPOINT", "http://ep:2"), ("AWS_REGION", "us-east-2")];
        assert_eq!(
            cfg("b-1", &opts, &with_region, Endpoint).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            cfg("b-1", &opts, &with_region, Region).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            cfg("b-1", &none, &with_region, Region).as_deref(),
            Some("us-east-2")
        );
        assert_eq!(cfg("b-1", &none, &[], Bucket).as_deref(), Some("b-1"));

        let allow = |opts: &StoreOptions, vars: &[(&str, &str)]| {
            s3_builder("b-1", opts, &env(vars))
                .get_config_value(&Client(object_store::ClientConfigKey::AllowHttp))
        };
        assert_eq!(
            allow(&opts, &[]).as_deref(),
            Some("true"),
            "loopback endpoint"
        );
        assert_eq!(allow(&none, &both).as_deref(), Some("false"));
        assert_eq!(
            allow(&none, &[("AWS_ALLOW_HTTP", "true")]).as_deref(),
            Some("true")
        );

        assert_eq!(
            allow(
                &none,
                &[("AWS_ENDPOINT", "http://localhost:80@example.com")]
            )
            .as_deref(),
            Some("false"),
            "user info before a remote host is not loopback"
        );
        assert_eq!(
            allow(&none, &[("AWS_ENDPOINT", "http://[::1]:9000")]).as_deref(),
            Some("true")
        );
        let invalid_certs = [("AWS_ALLOW_INVALID_CERTIFICATES", "true")];
        assert_eq!(
            s3_builder("b-1", &none, &env(&invalid_certs))
                .get_config_value(&Client(
                    object_store::ClientConfigKey::AllowInvalidCertificates
                ))
                .as_deref(),
            Some("false"),
            "TLS verification cannot be switched off"
        );

        assert_eq!(
            cfg("b-1", &none, &[], VirtualHostedStyleRequest).as_deref(),
            Some("false")
        );
        let vh = [("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true")];
        assert_eq!(
            cfg("b-1", &none, &vh, VirtualHostedStyleRequest).as_deref(),
            Some("true")
        );
    }

    #[test]
    fn bad_urls_are_named_with_a_fix() {
        let none = StoreOptions::default();
        let cases = [
            (
                "",
                "sink url \"\": is empty: give a local path such as ./data",
            ),
            ("  ", "sink url \"  \": is empty"),
            (
                "gs://bucket/x",
                "sink url \"gs://bucket/x\": the scheme \"gs\" is not supported: give a local path",
            ),
            (
                "s3://",
                "sink url \"s3://\": has no bucket: write s3://bucket/prefix",
            ),
            ("s3:///prefix", "sink url \"s3:///prefix\": has no bucket"),
            (
                "s3://My_Bucket/x",
                "sink url \"s3://My_Bucket/x\": \"My_Bucket\" is not a bucket name",
            ),
            (
                "s3://ab/x",
                "sink url \"s3://ab/x\": \"ab\" is not a bucket name",
            ),
            (
                "s3://bucket/a//b",
                "sink url \"s3://bucket/a//b\": the prefix \"a//b\" is not a clean key prefix",
            ),
            (
                "s3://bucket/a/../b",
                "sink url \"s3://bucket/a/../b\": the prefix",
            ),
            (
                "s3://bucket/x?versionId=1",
                "sink url \"s3://bucket/x?versionId=1\": an S3 URL cannot have a query",
            ),
            (
                "file://relative/path",
                "sink url \"file://relative/path\": a file URL needs an absolute path",
            ),
            (
                "s3://AKID:sekrit@bucket/x",
                "sink url \"s3://***@bucket/x\": credentials in the URL are not accepted",
            ),
        ];
        for (url, want) in cases {
            let got = s3(url, &none, &[]).unwrap_err().to_string();
            assert!(
                got.starts_with(want),
                "{url:?}: got {got:?}, want prefix {want:?}"
            );
            assert!(!got.contains("sekrit"));
        }
    }

    #[test]
    fn local_dir_that_cannot_be_created_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let url = format!("{}/sub", file.display());
        let got = open(&url, &StoreOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            got.starts_with(&format!(
                "sink directory {url}: cannot create the directory:"
            )),
            "{got}"
        );
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("s3://k:s@b/p/a@b"), "s3://***@b/p/a@b");
        assert_eq!(redact("s3://b/p@x"), "s3://b/p@x");
        assert_eq!(redact("./data"), "./data");
    }
}
