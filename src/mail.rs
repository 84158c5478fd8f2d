//! Outgoing mail through lettre: SMTP when configured; otherwise (the embedded default) each message is
//! printed to the console and written to `{data_dir}/outbox` so a developer can sign in without a relay.

use std::path::{Path, PathBuf};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};

use crate::config::{MailConfig, SmtpTls};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid mail address: {0}")]
    Address(String),
    #[error("cannot build message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("cannot write to outbox: {0}")]
    Outbox(#[from] std::io::Error),
}

enum Delivery {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

pub struct Mailer {
    from: Mailbox,
    delivery: Delivery,
}

impl Mailer {
    pub fn from_config(config: &MailConfig, data_dir: &std::path::Path) -> Result<Self, MailError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| MailError::Address(format!("{}: {e}", config.from)))?;
        let delivery = match &config.smtp_host {
            None => Delivery::Outbox(data_dir.join("outbox")),
            Some(host) => {
                let mut builder = match config.smtp_tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|e| MailError::Smtp(e.to_string()))?,
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| MailError::Smtp(e.to_string()))?,
                };
                if let Some(port) = config.smtp_port {
                    builder = builder.port(port);
                }
                if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password)
                {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Delivery::Smtp(
                    builder
                        .timeout(Some(std::time::Duration::from_secs(15)))
                        .build(),
                )
            }
        };
        Ok(Self { from, delivery })
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|e| MailError::Address(format!("{e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.delivery {
            Delivery::Smtp(transport) => {
                transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Smtp(e.to_string()))?;
            }
            Delivery::Outbox(dir) => {
                let formatted = message.formatted();
                tokio::fs::create_dir_all(dir).await?;
                let name = format!("{}-{}.eml", crate::store::now(), crate::crypto::random_id());
                write_private(&dir.join(name), &formatted).await?;
                // Development mode only: the console is the mailbox.
                println!(
                    "----- mail (outbox) -----\n{}\n-------------------------",
                    String::from_utf8_lossy(&formatted)
                );
            }
        }
        Ok(())
    }
}

/// A new owner-only file (sent mail in the development mailbox holds codes).
#[cfg(unix)]
async fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.write_all(contents).await?;
    file.sync_all().await
}
