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

/// One JSON object on standard output, the reason also on standard error.
fn fail(message: &str, code: i32) -> ! {
    eprintln!("admin: {message}");
    println!("{}", serde_json::json!({"error": message}));
    std::process::exit(code);
}

#[tokio::main]
async fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print as usual.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            eprintln!("{text}");
            // The sentence before the usage lines, on one line.
            let lines: Vec<&str> =
                text.lines().take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:")).map(str::trim).collect();
            fail(lines.join(" ").trim_start_matches("error: "), 2)
        }
    };
    // Without an endpoint, the SDK talks to AWS itself, with whatever
    // credentials this shell has: say so, since a local server was likelier meant.
    let endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KMS"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|v| !v.is_empty()));
    if endpoint.is_none() {
        eprintln!(
            "admin: no AWS_ENDPOINT_URL is set, so this talks to AWS itself (your account, region {}). \
             For the local server of `make run`, first run: . .run/make-run/env",
            std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "unset".into())
        );
    }
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
        Err(e) => fail(&e.to_string(), if matches!(e, AdminError::Usage(_)) { 2 } else { 1 }),
    }
}
