//! Work every node does on its own schedule, beside the requests: delivering queued mail, forgetting
//! idle rate-limiter keys, and (with a lease, so one node at a time) sweeping expired rows.

use std::{sync::Arc, time::Duration};

use crate::{app::App, mail_queue, tenant};

/// Starts the node's background tasks on the current runtime.
pub fn spawn(app: &Arc<App>) {
    let shrinker = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            shrinker.limiters.shrink();
        }
    });
    tokio::spawn(deliver_mail(app.clone()));
}

/// The mail worker: woken by this node's requests, and every `mail_queue::POLL_INTERVAL` for what
/// other nodes queued or what is due for a retry.
async fn deliver_mail(app: Arc<App>) {
    loop {
        let mut more = false;
        match tenant::list(&app.db).await {
            Ok(tenants) => {
                for row in tenants {
                    let tenant = match app.tenant(&row.slug).await {
                        Ok(Some(tenant)) => tenant,
                        Ok(None) => continue,
                        Err(error) => {
                            tracing::error!(%error, tenant = %row.slug, "mail worker cannot load the tenant");
                            continue;
                        }
                    };
                    match mail_queue::deliver_due(tenant.scope(&app.db), &tenant.data_key, &app.mailer).await {
                        Ok(claimed) => more |= mail_queue::batch_was_full(claimed),
                        Err(error) => tracing::error!(%error, tenant = %row.slug, "mail worker: storage failure"),
                    }
                }
            }
            Err(error) => tracing::error!(%error, "mail worker cannot list tenants"),
        }
        if !more {
            app.mail_doorbell.wait().await;
        }
    }
}
