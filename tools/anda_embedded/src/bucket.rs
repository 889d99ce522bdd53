//! Stores in object-storage buckets: `s3://`, `gs://`, `az://` (and the other
//! spellings object_store's URL parser knows for Azure).
//!
//! Options are object_store's own configuration keys. Each one is checked
//! against the backend's key set first, because the builders' string form
//! silently drops a key they do not know, and a misspelt `endpoint` must not
//! send a store to the real AWS. The environment (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`) fills what is not given. No option value ever appears in an
//! error message: values are credentials as often as not.
use crate::StoreError;
use object_store::{
    ObjectStore,
    aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut},
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    gcp::{GoogleCloudStorageBuilder, GoogleConfigKey},
    path::Path,
    prefix::PrefixStore,
};
use std::{str::FromStr, sync::Arc};

/// A bucket location and the options to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct BucketLocation {
    /// The URL as given, e.g. `s3://bucket/prefix`.
    pub url: String,
    /// object_store configuration keys and their values.
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for BucketLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys only: a value may be a secret.
        let keys: Vec<&str> = self.options.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("BucketLocation")
            .field("url", &self.url)
            .field("options", &keys)
            .finish()
    }
}

/// The URL schemes that name a bucket.
pub const SCHEMES: [&str; 8] = ["s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss"];

/// Whether `location` names a bucket rather than a directory.
pub fn is_bucket_url(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

fn config_error(location: &BucketLocation, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Config(format!("{}: {detail}", redacted(&location.url)))
}

/// The URL without a password, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<an unparsable URL>".to_string(),
    }
}

fn keys<'a, K: FromStr>(
    location: &'a BucketLocation,
    backend: &str,
) -> Result<Vec<(K, &'a str)>, StoreError> {
    location
        .options
        .iter()
        .map(|(key, value)| {
            K::from_str(key)
                .map(|parsed| (parsed, value.as_str()))
                .map_err(|_| {
                    config_error(
                        location,
                        format!(
                            "unknown storage option {key:?} for {backend} (object_store's \
                             configuration keys, e.g. \"aws_endpoint\", \"aws_region\")"
                        ),
                    )
                })
        })
        .collect()
}

/// An object store for a bucket, and what to tell a user whose first request
/// fails when no credentials were given.
pub struct OpenedBucket {
    pub store: Arc<dyn ObjectStore>,
    pub missing_credentials: Option<&'static str>,
}

const NO_AWS_CREDENTIALS: &str = "no credentials were given (aws_access_key_id and \
    aws_secret_access_key in storage_options, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
    a web identity or container credentials in the environment), so the client asked the \
    cloud's instance-metadata service, which only answers on a cloud machine";
const NO_GOOGLE_CREDENTIALS: &str = "no credentials were given (google_service_account, \
    google_service_account_key or google_application_credentials in storage_options or the \
    GOOGLE_* environment)";
const NO_AZURE_CREDENTIALS: &str = "no credentials were given (azure_storage_account_key, a \
    SAS token, a client secret or a bearer token in storage_options or the AZURE_* \
    environment)";

/// Builds the object store for a bucket URL, scoped to the URL's path.
pub fn open(location: &BucketLocation) -> Result<OpenedBucket, StoreError> {
    let url = url_of(location)?;
    let scheme = url.scheme().to_ascii_lowercase();
    let (store, missing_credentials): (Arc<dyn ObjectStore>, _) = match scheme.as_str() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(location.url.clone());
            for (key, value) in keys::<AmazonS3ConfigKey>(location, "S3")? {
                builder = builder.with_config(key, value);
            }
            // AndaDB commits with conditional puts: without them two writers
            // could both win, so a configuration that turns them off is refused.
            if builder
                .get_config_value(&AmazonS3ConfigKey::ConditionalPut)
                .is_some_and(|value| value.trim().eq_ignore_ascii_case("disabled"))
            {
                return Err(config_error(
                    location,
                    "conditional puts cannot be disabled: AndaDB relies on them to commit",
                ));
            }
            let skip_signature = builder
                .get_config_value(&AmazonS3ConfigKey::SkipSignature)
                .is_some_and(|value| value.eq_ignore_ascii_case("true"));
            let from_environment = [
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
            let missing = if skip_signature || from_environment {
                None
            } else {
                none_set(&[AmazonS3ConfigKey::AccessKeyId], |key| {
                    builder.get_config_value(key)
                })
                .then_some(NO_AWS_CREDENTIALS)
            };
            let builder = builder.with_conditional_put(S3ConditionalPut::ETagMatch);
            let store = builder.build().map_err(|err| config_error(location, err))?;
            (Arc::new(store), missing)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(location.url.clone());
            for (key, value) in keys::<GoogleConfigKey>(location, "Google Cloud Storage")? {
                builder = builder.with_config(key, value);
            }
            let credentials = [
                GoogleConfigKey::ServiceAccount,
                GoogleConfigKey::ServiceAccountKey,
                GoogleConfigKey::ApplicationCredentials,
                GoogleConfigKey::SkipSignature,
            ];
            let missing = none_set(&credentials, |key| builder.get_config_value(key))
                .then_some(NO_GOOGLE_CREDENTIALS);
            let store = builder.build().map_err(|err| config_error(location, err))?;
            (Arc::new(store), missing)
        }
        _ => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(location.url.clone());
            for (key, value) in keys::<AzureConfigKey>(location, "Azure Blob Storage")? {
                builder = builder.with_config(key, value);
            }
            let credentials = [
                AzureConfigKey::AccessKey,
                AzureConfigKey::SasKey,
                AzureConfigKey::ClientSecret,
                AzureConfigKey::Token,
                AzureConfigKey::UseEmulator,
                AzureConfigKey::UseAzureCli,
                AzureConfigKey::FederatedTokenFile,
                AzureConfigKey::SkipSignature,
            ];
            let missing = none_set(&credentials, |key| builder.get_config_value(key))
                .then_some(NO_AZURE_CREDENTIALS);
            let store = builder.build().map_err(|err| config_error(location, err))?;
            (Arc::new(store), missing)
        }
    };
    let prefix = Path::from_url_path(url.path()).map_err(|err| config_error(location, err))?;
    let store = if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok(OpenedBucket {
        store,
        missing_credentials,
    })
}

/// Whether none of `keys` has a value (given or from the environment).
fn none_set<K>(keys: &[K], value: impl Fn(&K) -> Option<String>) -> bool {
    keys.iter().all(|key| value(key).is_none())
}

fn url_of(location: &BucketLocation) -> Result<url::Url, StoreError> {
    let url = url::Url::parse(&location.url).map_err(|err| config_error(location, err))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error(location, "the URL names no bucket"));
    }
    // object_store reads an Azure account from `container@account`, a user
    // name; a password in the URL can only be a credential.
    if url.password().is_some() {
        return Err(config_error(
            location,
            "put credentials in storage_options or the environment, not in the URL",
        ));
    }
    Ok(url)
}
