//! What lives for a whole execution environment: built once per cold start
//! and borrowed by every request.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::auth::Authenticator;
use crate::domain::catalog::{Catalog, CatalogError};
use crate::outbound::resolve::{Lookup, SystemLookup};
use crate::outbound::{self, ClientSettings};
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
    /// The guarded client to the sites instances name (the credential check,
    /// the hub), with `PROVIDER_ALLOWED_HOSTS`: built on first use (it reads
    /// the system's root certificates); an error here (an unreadable
    /// `PROVIDER_TEST_CA_FILE`) fails every request that needs it with 500.
    pub vendor: Deferred<Result<outbound::Client, String>>,
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
            vendor: vendor_client(&settings, Arc::new(SystemLookup)),
            settings,
        })
    }

    /// The same, its outbound client resolving names through `lookup` (a
    /// test's DNS).
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.vendor = vendor_client(&self.settings, lookup);
        self
    }
}

fn vendor_client(settings: &Settings, lookup: Arc<dyn Lookup>) -> Deferred<Result<outbound::Client, String>> {
    let settings = settings.clone();
    Deferred::new(move || {
        let extra_roots_pem = match &settings.provider_test_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("PROVIDER_TEST_CA_FILE {path}: {e}"))?),
            None => None,
        };
        let client = ClientSettings { allow: settings.provider_allowed_hosts.clone(), extra_roots_pem };
        // Connecting gets half the check's budget, so that a host that does
        // not answer leaves time to say so.
        outbound::Client::new(&client, lookup, settings.provider_check_timeout / 2)
    })
}
