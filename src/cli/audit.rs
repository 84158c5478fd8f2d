//! `latchkey audit`: the audit log.

use clap::Subcommand;
use serde_json::json;

use super::{Admin, CliError};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The most recent audit events, newest first, as JSON lines.
    Tail {
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

pub async fn run(app: &Admin, command: AuditCommand) -> Result<(), CliError> {
    let AuditCommand::Tail { limit } = command;
    for event in latchkey::audit::recent(&app.db, limit).await? {
        println!(
            "{}",
            json!({
                "id": event.id, "tenant_id": event.tenant_id, "at": event.occurred_at, "actor": event.actor,
                "action": event.action, "target": event.target, "outcome": event.outcome, "ip": event.ip,
                "details": event.details,
            })
        );
    }
    Ok(())
}
