//! What lives for a whole execution environment: built once per cold start
//! and borrowed by every request.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::auth::Authenticator;
use crate::domain::catalog::{Catalog, CatalogError};
use crate::provider::resolve::{Lookup, SystemLookup};
use crate::provider::{CheckSettings, Checker};
use crate::sdk::{load_function_sdk_config, Deferred};
use crate::seal::{KeyPolicy, Sealer};
use crate::settings::Settings;
use crate::store::Store;

pub struct App {
    pub settings: Settings,
    pub catalog: Catalog,
    pub store: Store,
    pub sealer: Sealer,
    pub auth: Authenticator,
    /// The vendor credential check, when `PROVIDER_CHECK` is on: built on
    /// first use (it reads the system's root certificates); an error here
    /// (an unreadable `PROVIDER_TEST_CA_FILE`) fails every check with 500.
    pub checker: Option<Deferred<Result<Checker, String>>>,
}

impl App {
    pub async fn from_env() -> Result<Self, CatalogError> {
        let settings = Settings::from_env();
        let sdk = load_function_sdk_config().await;
        App::new(&sdk, settings)
    }

    /// The clients are built on first use (see [`Deferred`]).
    pub fn new(sdk: &SdkConfig, settings: Settings) -> Result<Self, CatalogError> {
        let (d, k) = (sdk.clone(), sdk.clone());
        Self::with_deferred(
            Deferred::new(move || aws_sdk_dynamodb::Client::new(&d)),
            Deferred::new(move || aws_sdk_kms::Client::new(&k)),
            settings,
        )
    }

    pub fn with_clients(
        dynamodb: aws_sdk_dynamodb::Client,
        kms: aws_sdk_kms::Client,
        settings: Settings,
    ) -> Result<Self, CatalogError> {
        Self::with_deferred(Deferred::ready(dynamodb), Deferred::ready(kms), settings)
    }

    fn with_deferred(
        dynamodb: Deferred<aws_sdk_dynamodb::Client>,
        kms: Deferred<aws_sdk_kms::Client>,
        settings: Settings,
    ) -> Result<Self, CatalogError> {
        let policy = KeyPolicy { max_age: settings.data_key_max_age, ..KeyPolicy::default() };
        Ok(App {
            catalog: Catalog::builtin()?,
            store: Store::deferred(dynamodb, settings.table_name.clone()),
            sealer: Sealer::deferred(kms, settings.kms_key_id.clone(), policy),
            auth: Authenticator::new(settings.auth_cache),
            checker: checker(&settings, Arc::new(SystemLookup)),
            settings,
        })
    }

    /// The same, its credential check resolving names through `lookup` (a
    /// test's DNS).
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.checker = checker(&self.settings, lookup);
        self
    }
}

fn checker(settings: &Settings, lookup: Arc<dyn Lookup>) -> Option<Deferred<Result<Checker, String>>> {
    if !settings.provider_check {
        return None;
    }
    let settings = settings.clone();
    Some(Deferred::new(move || {
        let extra_roots_pem = match &settings.provider_test_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("PROVIDER_TEST_CA_FILE {path}: {e}"))?),
            None => None,
        };
        let check = CheckSettings {
            timeout: settings.provider_check_timeout,
            allow: settings.provider_allowed_hosts.clone(),
            extra_roots_pem,
        };
        Checker::new(&check, lookup)
    }))
}
