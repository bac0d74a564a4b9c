//! `admin`: the operator command. See `instances::admin`.

use clap::{Parser, Subcommand};
use instances::admin::{check_grace, Admin, AdminError, DEFAULT_GRACE_SECONDS};
use instances::sdk::load_sdk_config;
use instances::settings::Settings;
use instances::store::Store;

/// Operator commands for the instances service. Reads TABLE_NAME, KMS_KEY_ID
/// and the AWS SDK's variables (AWS_ENDPOINT_URL, AWS_REGION, ...), like the
/// function. Each command prints one JSON object as its last line.
#[derive(Parser)]
#[command(name = "admin", version)]
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
    /// Every organization, with its creation date and numbers of users and instances.
    ListOrganizations,
    /// An organization's users: e-mail address, enabled, creation date.
    ListUsers {
        #[arg(long)]
        organization: String,
    },
    /// Delete a user and its secrets: refused within AUTH_CACHE_SECONDS (60 s at most).
    DeleteUser {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
    },
    /// Delete an organization without users; refused while it has instances unless --force.
    DeleteOrganization {
        #[arg(long)]
        organization: String,
        /// Delete its instances too (after the organization).
        #[arg(long)]
        force: bool,
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
    /// Replace a user's secret; prints the new one. The old one works for --grace seconds more.
    RotateUserSecret {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        user: String,
        /// How long the old secret keeps working, in seconds (0: refused now; at most 30 days).
        #[arg(long, default_value_t = DEFAULT_GRACE_SECONDS)]
        grace: u64,
    },
    /// Replace an organization's secret; prints the new one. The old one works for --grace seconds more.
    RotateOrganizationSecret {
        #[arg(long)]
        organization: String,
        /// How long the old secret keeps working, in seconds (0: refused now; at most 30 days).
        #[arg(long, default_value_t = DEFAULT_GRACE_SECONDS)]
        grace: u64,
    },
    /// Rewrite instances stored with timestamps of another width than .SSS (before 2026-11-29) so lists sort in time order; safe to run again.
    MigrateDates,
    /// Enter organizations created by a build before the registry (list-organizations) into it; safe to run again.
    RegisterOrganizations,
    /// Start the polls of instances whose events were enabled before 0.4.0 (which polled nothing); safe to run again.
    StartPolls,
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
    if let Err(message) = check_credentials(&sdk).await {
        fail(&message, 1);
    }
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
        Command::RotateUserSecret { organization, user, grace } => match check_grace(*grace) {
            Ok(grace) => admin.rotate_user_secret(organization, user, grace).await,
            Err(e) => Err(e),
        },
        Command::RotateOrganizationSecret { organization, grace } => match check_grace(*grace) {
            Ok(grace) => admin.rotate_organization_secret(organization, grace).await,
            Err(e) => Err(e),
        },
        Command::MigrateDates => admin.migrate_dates().await,
        Command::StartPolls => admin.start_polls().await,
        Command::RegisterOrganizations => admin.register_organizations().await,
        Command::ListOrganizations => admin.list_organizations().await,
        Command::ListUsers { organization } => admin.list_users(organization).await,
        Command::DeleteUser { organization, user } => admin.delete_user(organization, user).await,
        Command::DeleteOrganization { organization, force } => admin.delete_organization(organization, *force).await,
    };
    match result {
        Ok(value) => {
            if let Some(note) = value["note"].as_str() {
                eprintln!("admin: {note}");
            }
            println!("{value}")
        }
        Err(e) => fail(&e.to_string(), if matches!(e, AdminError::Usage(_)) { 2 } else { 1 }),
    }
}

/// Credentials resolved before any call, so that their absence reads as
/// what it is (the SDK's own account is the last provider's failure, such as
/// "IMDS is disabled or the caller has insufficient permissions").
async fn check_credentials(sdk: &aws_config::SdkConfig) -> Result<(), String> {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    let Some(provider) = sdk.credentials_provider() else {
        return Err(NO_CREDENTIALS.into());
    };
    let Err(e) = provider.provide_credentials().await else {
        return Ok(());
    };
    // Not found anywhere: the chain's own "not loaded", or the instance
    // metadata service (its last resort) refusing or failing, as it does
    // off EC2.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut root = e.to_string();
    let mut not_found = root == "the credential provider was not enabled";
    while let Some(c) = cause {
        not_found |= c.is::<aws_config::imds::client::error::ImdsError>()
            || c.is::<aws_config::imds::client::error::TokenError>();
        root = c.to_string();
        cause = c.source();
    }
    if not_found {
        Err(match std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()) {
            Some(profile) => format!("{NO_CREDENTIALS} (AWS_PROFILE={profile} gave none: is it in ~/.aws/config?)"),
            None => NO_CREDENTIALS.into(),
        })
    } else {
        Err(format!("AWS credentials could not be loaded: {}", root.trim_end_matches('.')))
    }
}

const NO_CREDENTIALS: &str = "no AWS credentials found: give them with AWS_PROFILE (a profile of ~/.aws/config), \
     or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); \
     for the local server of `make run`, first run: . .run/make-run/env";
