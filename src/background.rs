//! Work every node does on its own schedule, beside the requests: delivering queued mail, forgetting
//! idle rate-limiter keys, and (with a lease, so one node at a time) sweeping expired rows.

use std::{sync::Arc, time::Duration};

use crate::{
    app::App,
    audit, crypto, mail_queue, store, sweep,
    sso::domains::{self, Recheck},
    tenant::{self, Tenant},
};

/// Every tenant, each with its data key (from the node's tenant cache).
async fn tenants(app: &App) -> store::StoreResult<Vec<Arc<Tenant>>> {
    let mut loaded = Vec::new();
    for row in tenant::list(&app.db).await? {
        if let Some(tenant) = app.tenant(&row.slug).await? {
            loaded.push(tenant);
        }
    }
    Ok(loaded)
}

/// Starts the node's background tasks on the current runtime.
pub fn spawn(app: &Arc<App>) {
    let shrinker = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            shrinker.services.limiters.shrink();
        }
    });
    tokio::spawn(deliver_mail(app.clone()));
    tokio::spawn(sweep_expired(app.clone()));
    tokio::spawn(recheck_domains(app.clone()));
}

/// The re-check of verified domains: every node ticks, the one that takes the lease checks every
/// tenant's verified domains (`sso::domains::recheck`) and audits what it found lost or withdrew.
async fn recheck_domains(app: Arc<App>) {
    let interval = app.config.domains.recheck_interval_seconds;
    let grace = app.config.domains.lost_grace_seconds as i64;
    let holder = crypto::random_id();
    let mut tick = tokio::time::interval(Duration::from_secs(interval.clamp(1, 60)));
    loop {
        tick.tick().await;
        let now = store::now();
        match sweep::take_lease(&app.db, "domain-recheck", &holder, interval as i64, now).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::error!(%error, "domain re-check: cannot take the lease");
                continue;
            }
        }
        let tenants = match tenants(&app).await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::error!(%error, "domain re-check cannot load the tenants");
                continue;
            }
        };
        for tenant in tenants {
            let scope = tenant.scope(&app.db);
            let outcomes = match domains::recheck(scope, &app.services.hasher, &app.services.dns, now, grace).await {
                Ok(outcomes) => outcomes,
                Err(error) => {
                    tracing::error!(%error, tenant = %tenant.slug, "domain re-check failed; the next one retries");
                    continue;
                }
            };
            for (claim, outcome) in outcomes {
                if let Recheck::Unknown(reason) = &outcome {
                    tracing::warn!(domain = %claim.domain, %reason, "domain re-check: no answer");
                }
                let Some(action) = outcome.audit_action() else { continue };
                tracing::warn!(tenant = %tenant.slug, domain = %claim.domain, action, "verified domain's TXT record not found");
                let event = audit::Event::new(&tenant.id, "system", action)
                    .target(format!("domain:{}", claim.domain))
                    .details(serde_json::json!({ "organization_id": claim.organization_id }));
                if let Err(error) = audit::record(&app.db, &Default::default(), event).await {
                    tracing::error!(%error, "domain re-check: cannot audit");
                }
            }
        }
    }
}

/// The sweeper: every node ticks, the one that takes the lease sweeps every tenant.
async fn sweep_expired(app: Arc<App>) {
    let interval = app.config.maintenance.sweep_interval_seconds;
    let holder = crypto::random_id();
    // Tick more often than the interval, so a node that stopped while holding the lease is replaced
    // soon after it runs out.
    let mut tick = tokio::time::interval(Duration::from_secs(interval.clamp(1, 60)));
    loop {
        tick.tick().await;
        let now = store::now();
        match sweep::take_lease(&app.db, "sweep", &holder, interval as i64, now).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::error!(%error, "sweep: cannot take the lease");
                continue;
            }
        }
        if let Err(error) = sweep_all(&app, now).await {
            tracing::error!(%error, "sweep failed; the next one retries");
        }
    }
}

async fn sweep_all(app: &App, now: i64) -> store::StoreResult<()> {
    let retention_days = app.config.maintenance.audit_retention_days as i64;
    let audit_cutoff = (retention_days > 0).then(|| now - retention_days * 24 * 3600);
    for tenant in tenants(app).await? {
        let mut swept = sweep::tenant(tenant.scope(&app.db), app.lifetimes(), now).await?;
        if let Some(cutoff) = audit_cutoff {
            swept.0.push(("audit_events", audit::forget_before(&app.db, Some(&tenant.id), cutoff, sweep::BATCH).await?));
        }
        if swept.total() > 0 {
            let counts: Vec<String> = swept.0.iter().filter(|(_, n)| *n > 0).map(|(kind, n)| format!("{kind}={n}")).collect();
            tracing::info!(tenant = %tenant.slug, swept = %counts.join(" "), "swept expired rows");
        }
    }
    if let Some(cutoff) = audit_cutoff {
        audit::forget_before(&app.db, None, cutoff, sweep::BATCH).await?;
    }
    Ok(())
}

/// The mail worker: woken by this node's requests, and every `mail_queue::POLL_INTERVAL` for what
/// other nodes queued or what is due for a retry.
async fn deliver_mail(app: Arc<App>) {
    loop {
        let mut more = false;
        match tenants(&app).await {
            Ok(tenants) => {
                for tenant in tenants {
                    match mail_queue::deliver_due(tenant.scope(&app.db), &tenant.data_key, &app.mailer).await {
                        Ok(claimed) => more |= mail_queue::batch_was_full(claimed),
                        Err(error) => tracing::error!(%error, tenant = %tenant.slug, "mail worker: storage failure"),
                    }
                }
            }
            Err(error) => tracing::error!(%error, "mail worker cannot load the tenants"),
        }
        if !more {
            app.mail_doorbell().wait().await;
        }
    }
}
