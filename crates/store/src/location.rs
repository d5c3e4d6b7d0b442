//! Storage URLs: which forms are accepted, and the `object_store` backend each one opens.
//!
//! Credentials never come from the URL (a URL with a user, password or query is refused), only
//! from the environment, so a store's URL can be logged and shown as it is.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;

use crate::error::{Result, StoreError};
use crate::key;

/// A parsed storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A local folder (absolute).
    Local(PathBuf),
    /// An Azure Blob container and a prefix inside it.
    Azure { container: String, prefix: Path },
    /// An S3 bucket and a prefix inside it.
    S3 { bucket: String, prefix: Path },
}

/// A backend opened from a URL: the store, the prefix applied to every key, the URL to show.
pub(crate) struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    pub display: String,
}

impl Location {
    /// Parses `url`; plain paths are made absolute against the current folder.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.trim().is_empty() {
            return Err(bad("empty"));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            let path = FsPath::new(url);
            let absolute = if path.is_absolute() {
                path.to_path_buf()
            } else {
                let cwd =
                    std::env::current_dir().map_err(|e| bad(&format!("no current folder: {e}")))?;
                cwd.join(path)
            };
            return Ok(Self::Local(absolute));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // The URL parser drops tabs and line breaks anywhere, which could turn `.\t.`
                // into `..` after the caller checked the text: refuse them instead.
                if url.chars().any(char::is_control) {
                    return Err(bad("a location holds no control characters"));
                }
                let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    return Err(bad("a file URL takes no query or fragment"));
                }
                let path = parsed
                    .to_file_path()
                    .map_err(|()| bad("a file URL must be file:///absolute/path"))?;
                Ok(Self::Local(path))
            }
            scheme @ ("az" | "azure" | "s3") => {
                if rest.contains(['?', '#', '@']) {
                    return Err(bad(
                        "no user, password, query or fragment: credentials come from the environment",
                    ));
                }
                let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if name.is_empty() {
                    return Err(bad("the container or bucket name is missing"));
                }
                if name.contains(':') {
                    return Err(bad("no port: endpoints come from the environment"));
                }
                let prefix = key::parse_prefix(prefix.trim_end_matches('/'))
                    .map_err(|e| bad(&format!("bad prefix: {e}")))?;
                let name = name.to_string();
                Ok(if scheme == "s3" {
                    Self::S3 {
                        bucket: name,
                        prefix,
                    }
                } else {
                    Self::Azure {
                        container: name,
                        prefix,
                    }
                })
            }
            other => Err(bad(&format!("unknown scheme '{other}'"))),
        }
    }

    /// The URL to show for this location: canonical, never with secrets.
    pub(crate) fn display(&self) -> String {
        let with_prefix = |scheme: &str, name: &str, prefix: &Path| {
            if prefix.as_ref().is_empty() {
                format!("{scheme}://{name}")
            } else {
                format!("{scheme}://{name}/{prefix}")
            }
        };
        match self {
            Self::Local(path) => url::Url::from_file_path(path)
                .map(|u| u.to_string())
                .unwrap_or_else(|()| path.display().to_string()),
            Self::Azure { container, prefix } => with_prefix("az", container, prefix),
            Self::S3 { bucket, prefix } => with_prefix("s3", bucket, prefix),
        }
    }

    /// Opens the backend; `url` is what the caller gave, for errors.
    pub(crate) fn open(self, url: &str) -> Result<Opened> {
        let display = self.display();
        let open_error = |reason: String| StoreError::Open {
            url: display.clone(),
            reason,
        };
        match self {
            Self::Local(folder) => {
                std::fs::create_dir_all(&folder)
                    .map_err(|e| open_error(format!("cannot create the folder: {e}")))?;
                // Shown as the folder's real path (no `..`, no symlinks), as the store sees it.
                let folder =
                    std::fs::canonicalize(&folder).map_err(|e| open_error(e.to_string()))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&folder)
                    .map_err(|e| open_error(e.to_string()))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                let store: Arc<dyn ObjectStore> = Arc::new(store);
                // With a store key configured, what lands in a local folder is ciphertext.
                let keys = crate::crypt::local_keys().map_err(|e| open_error(e.to_string()))?;
                let store = match keys {
                    Some(keys) => Arc::new(crate::crypt::EncryptedStore::new(store, keys)),
                    None => store,
                };
                Ok(Opened {
                    store,
                    prefix: Path::default(),
                    display: Self::Local(folder).display(),
                })
            }
            Self::Azure { container, prefix } => {
                let store = open_azure(url, &container).map_err(|e| e.into_error(open_error))?;
                Ok(Opened {
                    store,
                    prefix,
                    display,
                })
            }
            Self::S3 { bucket, prefix } => {
                let store = open_s3(url, &bucket).map_err(|e| e.into_error(open_error))?;
                Ok(Opened {
                    store,
                    prefix,
                    display,
                })
            }
        }
    }
}

/// Why a backend did not open: not compiled in, or a reason for [`StoreError::Open`].
enum OpenFailure {
    #[allow(dead_code)] // only built without a backend feature
    NotBuilt(StoreError),
    Reason(String),
}

impl From<String> for OpenFailure {
    fn from(reason: String) -> Self {
        Self::Reason(reason)
    }
}

impl OpenFailure {
    fn into_error(self, open_error: impl FnOnce(String) -> StoreError) -> StoreError {
        match self {
            Self::NotBuilt(e) => e,
            Self::Reason(reason) => open_error(reason),
        }
    }
}

/// Makes ring the process's rustls crypto provider, once, before object_store builds its HTTP
/// client: reqwest is built without a provider of its own (`cloud` in Cargo.toml) so that the
/// binary compiles one crypto library, the one the server's TLS and the CLI's client use.
#[cfg(any(feature = "azure", feature = "s3"))]
fn install_crypto_provider() {
    // An error only says a provider is already installed (ours, by an earlier open); keep it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(feature = "azure")]
fn open_azure(_url: &str, container: &str) -> Result<Arc<dyn ObjectStore>, OpenFailure> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    use object_store::ClientConfigKey;

    install_crypto_provider();

    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(container);
    // object_store does not read connection strings; Azure's own tools and SDKs do, so take
    // what it holds for whatever the AZURE_STORAGE_* variables do not already say.
    if let Ok(text) = std::env::var("AZURE_STORAGE_CONNECTION_STRING") {
        for (key, value) in connection_string_settings(&text)? {
            if builder.get_config_value(&key).is_none() {
                builder = builder.with_config(key, value);
            }
        }
        if connection_string_endpoint(&text).is_some_and(|e| e.starts_with("http://")) {
            builder =
                builder.with_config(AzureConfigKey::Client(ClientConfigKey::AllowHttp), "true");
        }
    }
    let store = builder.build().map_err(|e| {
        format!(
            "{e} (Azure settings come from AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, \
             AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_ENDPOINT, AZURE_STORAGE_CONNECTION_STRING, or \
             AZURE_STORAGE_USE_EMULATOR=true with AZURITE_BLOB_STORAGE_URL for Azurite)"
        )
    })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "azure"))]
fn open_azure(url: &str, _container: &str) -> Result<Arc<dyn ObjectStore>, OpenFailure> {
    let url = url.to_string();
    Err(OpenFailure::NotBuilt(StoreError::BackendNotBuilt {
        url,
        feature: "azure",
    }))
}

/// The settings in an Azure Storage connection string
/// (`DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;BlobEndpoint=...`) as
/// `object_store` config keys.
#[cfg(feature = "azure")]
fn connection_string_settings(
    text: &str,
) -> Result<Vec<(object_store::azure::AzureConfigKey, String)>, String> {
    use object_store::azure::AzureConfigKey;

    let mut settings = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(format!(
                "AZURE_STORAGE_CONNECTION_STRING has a part without '=' (setting {})",
                part.chars().take(20).collect::<String>()
            ));
        };
        let key = match name {
            "AccountName" => AzureConfigKey::AccountName,
            "AccountKey" => AzureConfigKey::AccessKey,
            "SharedAccessSignature" => AzureConfigKey::SasKey,
            "BlobEndpoint" => AzureConfigKey::Endpoint,
            "UseDevelopmentStorage" => AzureConfigKey::UseEmulator,
            // Protocol and suffix only shape endpoints we do not use (queues, tables, files).
            _ => continue,
        };
        settings.push((key, value.trim_end_matches('/').to_string()));
    }
    Ok(settings)
}

#[cfg(feature = "azure")]
fn connection_string_endpoint(text: &str) -> Option<&str> {
    text.split(';')
        .find_map(|p| p.trim().strip_prefix("BlobEndpoint="))
}

#[cfg(feature = "s3")]
fn open_s3(_url: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>, OpenFailure> {
    install_crypto_provider();
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| {
            format!(
                "{e} (S3 settings come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, \
                 AWS_ENDPOINT_URL and AWS_ALLOW_HTTP=true for S3-compatible servers)"
            )
        })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "s3"))]
fn open_s3(url: &str, _bucket: &str) -> Result<Arc<dyn ObjectStore>, OpenFailure> {
    let url = url.to_string();
    Err(OpenFailure::NotBuilt(StoreError::BackendNotBuilt {
        url,
        feature: "s3",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Location {
        Location::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(parse("/srv/data"), Location::Local("/srv/data".into()));
        assert_eq!(
            parse("file:///srv/my%20data"),
            Location::Local("/srv/my data".into())
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(parse("rel/dir"), Location::Local(cwd.join("rel/dir")));
        let azure = Location::Azure {
            container: "videos".into(),
            prefix: Path::parse("in/2024").unwrap(),
        };
        assert_eq!(parse("az://videos/in/2024/"), azure);
        assert_eq!(parse("azure://videos/in/2024"), azure);
        assert_eq!(azure.display(), "az://videos/in/2024");
        let s3 = parse("s3://bucket");
        assert_eq!(
            s3,
            Location::S3 {
                bucket: "bucket".into(),
                prefix: Path::default()
            }
        );
        assert_eq!(s3.display(), "s3://bucket");
        assert_eq!(parse("/srv/my data").display(), "file:///srv/my%20data");
    }

    #[test]
    fn refused_forms_say_why() {
        for (url, why) in [
            ("", "empty"),
            ("gs://bucket/x", "unknown scheme 'gs'"),
            ("http://host/x", "unknown scheme 'http'"),
            ("az://", "name is missing"),
            (
                "az://acct:key@container/x",
                "credentials come from the environment",
            ),
            (
                "s3://bucket/x?token=1",
                "credentials come from the environment",
            ),
            ("s3://bucket:9000/x", "no port"),
            ("az://c/a/../b", "bad prefix"),
            ("file://host/x", "file:///absolute/path"),
        ] {
            let err = Location::parse(url).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, StoreError::BadUrl { .. }), "{url}: {text}");
            assert!(text.contains(why), "{url}: {text}");
            assert!(text.contains("az://container/prefix"), "{url}: {text}");
        }
    }

    #[cfg(not(feature = "azure"))]
    #[test]
    fn azure_without_its_feature_says_so() {
        for url in ["az://c", "azure://c/in"] {
            match Location::parse(url).unwrap().open(url) {
                Err(
                    e @ StoreError::BackendNotBuilt {
                        feature: "azure", ..
                    },
                ) => {
                    let text = e.to_string();
                    assert!(text.contains("--features azure"), "{text}");
                }
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("opened without the azure feature"),
            }
        }
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn s3_without_its_feature_says_so() {
        let err = match Location::parse("s3://b/x").unwrap().open("s3://b/x") {
            Err(e) => e,
            Ok(_) => panic!("opened without the s3 feature"),
        };
        let text = err.to_string();
        assert!(
            matches!(err, StoreError::BackendNotBuilt { feature: "s3", .. }),
            "{text}"
        );
        assert!(
            text.contains("'s3' feature") && text.contains("--features s3"),
            "{text}"
        );
        assert!(text.contains("s3://b/x"), "{text}");
    }

    /// reqwest is built without a crypto provider of its own (Cargo.toml's `cloud`): opening a
    /// cloud store must install ring first, or building its HTTP client panics. Both backends
    /// are opened, each may be the first in a test process.
    #[cfg(all(feature = "s3", feature = "azure"))]
    #[test]
    fn cloud_stores_open_with_ring_as_the_provider() {
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1");
        std::env::set_var("AZURE_STORAGE_ACCOUNT_KEY", "a2V5");
        for url in ["s3://bucket/in", "az://container/in"] {
            if let Err(e) = Location::parse(url).unwrap().open(url) {
                panic!("{url}: {e}");
            }
        }
        let installed = rustls::crypto::CryptoProvider::get_default().expect("a provider");
        let names = |p: &rustls::crypto::CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(installed),
            names(&rustls::crypto::ring::default_provider())
        );
    }

    #[cfg(feature = "azure")]
    #[test]
    fn connection_strings_are_read() {
        use object_store::azure::AzureConfigKey;
        let text = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;\
                    BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;";
        let settings = connection_string_settings(text).unwrap();
        assert_eq!(
            settings,
            vec![
                (AzureConfigKey::AccountName, "devstoreaccount1".to_string()),
                (AzureConfigKey::AccessKey, "a2V5==".to_string()),
                (
                    AzureConfigKey::Endpoint,
                    "http://127.0.0.1:10000/devstoreaccount1".to_string()
                ),
            ]
        );
        assert_eq!(
            connection_string_endpoint(text),
            Some("http://127.0.0.1:10000/devstoreaccount1/")
        );
        assert!(connection_string_settings("AccountName").is_err());
    }
}
