//! `latchkey keys`: a tenant's signing keys.

use clap::Subcommand;
use latchkey::keys;
use serde_json::json;

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// New signing keys become current; old ones stay in the JWKS until their tokens have expired.
    Rotate {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

pub async fn run(app: &Admin, command: KeysCommand) -> Result<(), CliError> {
    let KeysCommand::Rotate { tenant } = command;
    let tenant = app.tenant(&tenant).await?;
    let kids = keys::rotate(
        tenant.scope(&app.db),
        &tenant.data_key,
        app.config.key_publish_grace(),
    )
    .await?;
    latchkey::audit::record(
        &app.db,
        &Default::default(),
        latchkey::audit::Event::new(&tenant.id, "operator", "keys.rotate")
            .details(json!({ "new_kids": kids })),
    )
    .await?;
    println!(
        "rotated signing keys for {}: new kids {}",
        tenant.slug,
        kids.join(", ")
    );
    Ok(())
}
