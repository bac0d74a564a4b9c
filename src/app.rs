//! What lives for a whole execution environment: built once per cold start
//! and borrowed by every request.

use aws_config::SdkConfig;

use crate::auth::Authenticator;
use crate::domain::catalog::{Catalog, CatalogError};
use crate::seal::{KeyPolicy, Sealer};
use crate::settings::{load_sdk_config, Settings};
use crate::store::Store;

pub struct App {
    pub settings: Settings,
    pub catalog: Catalog,
    pub store: Store,
    pub sealer: Sealer,
    pub auth: Authenticator,
}

impl App {
    pub async fn from_env() -> Result<Self, CatalogError> {
        let settings = Settings::from_env();
        let sdk = load_sdk_config().await;
        App::new(&sdk, settings)
    }

    pub fn new(sdk: &SdkConfig, settings: Settings) -> Result<Self, CatalogError> {
        Self::with_clients(
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_kms::Client::new(sdk),
            settings,
        )
    }

    pub fn with_clients(
        dynamodb: aws_sdk_dynamodb::Client,
        kms: aws_sdk_kms::Client,
        settings: Settings,
    ) -> Result<Self, CatalogError> {
        let policy = KeyPolicy {
            max_age: settings.data_key_max_age,
            ..KeyPolicy::default()
        };
        Ok(App {
            catalog: Catalog::builtin()?,
            store: Store::new(dynamodb, settings.table_name.clone()),
            sealer: Sealer::new(kms, settings.kms_key_id.clone(), policy),
            auth: Authenticator::new(settings.auth_cache),
            settings,
        })
    }
}
