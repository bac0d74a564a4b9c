//! `admin`: the operator command. See `instances::admin`.

use clap::{Parser, Subcommand};
use instances::admin::{Admin, AdminError};
use instances::sdk::load_sdk_config;
use instances::settings::Settings;
use instances::store::Store;

/// Operator commands for the instances service. Reads TABLE_NAME, KMS_KEY_ID
/// and the AWS SDK's variables (AWS_ENDPOINT_URL, AWS_REGION, ...), like the
/// function. Each command prints one JSON object as its last line.
#[derive(Parser)]
#[command(name = "admin")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table and the KMS key where they are missing (local servers; in the cloud the template owns them).
    Setup,
    /// Create an organization and its first user; prints both secrets (shown once).
    CreateCredentials {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
    },
    /// Add a user to an organization; prints the user's secret (shown once).
    AddUser {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
    },
    /// Disable a user: refused within AUTH_CACHE_SECONDS (60 s at most).
    DisableUser {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
    },
    /// Enable a disabled user again.
    EnableUser {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
    },
    /// Replace a user's secret; prints the new one.
    RotateUserSecret {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
    },
    /// Replace an organization's secret; prints the new one.
    RotateOrganizationSecret {
        #[arg(long)]
        organization: String,
    },
    /// Rewrite instances stored with timestamps of another width than .SSS (before 2026-11-29) so lists sort in time order; safe to run again.
    MigrateDates,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let settings = Settings::from_env();
    let sdk = load_sdk_config().await;
    let admin = Admin {
        store: Store::new(aws_sdk_dynamodb::Client::new(&sdk), settings.table_name.clone()),
        kms: aws_sdk_kms::Client::new(&sdk),
        settings,
    };
    let result = match &cli.command {
        Command::Setup => admin.setup().await,
        Command::CreateCredentials { organization, user } => admin.create_credentials(organization, user).await,
        Command::AddUser { organization, user } => admin.add_user(organization, user).await,
        Command::DisableUser { organization, user } => admin.set_user_enabled(organization, user, false).await,
        Command::EnableUser { organization, user } => admin.set_user_enabled(organization, user, true).await,
        Command::RotateUserSecret { organization, user } => admin.rotate_user_secret(organization, user).await,
        Command::RotateOrganizationSecret { organization } => admin.rotate_organization_secret(organization).await,
        Command::MigrateDates => admin.migrate_dates().await,
    };
    match result {
        Ok(value) => println!("{value}"),
        Err(e) => {
            let code = if matches!(e, AdminError::Usage(_)) { 2 } else { 1 };
            eprintln!("admin: {e}");
            println!("{}", serde_json::json!({"error": e.to_string()}));
            std::process::exit(code);
        }
    }
}
