//! Client credentials grant: RFC 6749 §4.4. Confidential clients only. The token's subject is the
//! client acting for itself, or, for a service account's client, the service account.

use crate::{
    context::Ctx,
    audit::Event,
    client::{Client, GrantType},
    oauth::{
        error::{ErrorCode, OAuthError},
        issue::{Issue, TokenResponse, issue},
        params::Params,
        scope::Scopes,
        resource::{self, Resource},
    },
    service_account,
};

/// Scopes that describe an end user and make no sense without one.
const USER_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// The scopes of a token without a user (RFC 6749 §3.3, §4.4.2): only scopes the client itself was
/// `granted` — never one merely because the named resource offers it — and, for a resource, only
/// those the resource also offers; never a scope about a user. What was asked for must all be allowed;
/// with nothing asked for, every allowed scope.
pub(super) fn machine_scopes(
    requested: Option<&str>,
    granted: &[String],
    resource: Option<&Resource>,
) -> Result<Scopes, OAuthError> {
    let allowed = |s: &String| {
        granted.contains(s)
            && resource.is_none_or(|r| r.scopes.contains(s))
            && !USER_SCOPES.contains(&s.as_str())
    };
    match requested {
        Some(requested) => {
            let requested = Scopes::parse(requested);
            match requested.iter().find(|s| !allowed(s)) {
                Some(bad) => Err(OAuthError::new(ErrorCode::InvalidScope, format!("scope {bad:.64} is not allowed"))),
                None => Ok(requested),
            }
        }
        None => Ok(granted.iter().filter(|s| allowed(s)).cloned().collect()),
    }
}

/// RFC 8707 `resource` of a machine-token request, when it names one. A resource that needs a
/// person's passkey (step-up) takes machine tokens only when it says it accepts agents.
pub(super) async fn machine_resource(ctx: &Ctx<'_>, params: &Params) -> Result<Option<Resource>, OAuthError> {
    let Some(uri) = params.get("resource") else {
        return Ok(None);
    };
    let resource = resource::requested(ctx.scope(), uri).await?;
    if !resource.admits_machines() {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "this resource needs a person's passkey sign-in and accepts no machine tokens",
        ));
    }
    Ok(Some(resource))
}

pub async fn grant(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.is_confidential() || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant",
        ));
    }
    // Checked here as well as at registration: a registration made before the tenant's policy
    // changed (or before this rule existed) keeps the grant in its metadata.
    if client.registered_dynamically && !ctx.tenant.registration_client_credentials {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "self-registered clients may not use client_credentials here",
        ));
    }
    let account = service_account::of_client(ctx.scope(), client).await?;
    if account.as_ref().is_some_and(|a| !a.is_active()) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this service account is disabled"));
    }
    let resource = machine_resource(ctx, params).await?;
    let scopes = machine_scopes(params.get("scope"), &client.scopes, resource.as_ref())?;
    let response = issue(
        ctx,
        Issue {
            client,
            scopes: &scopes,
            user: None,
            family_id: None,
            status_index: None,
            with_refresh_token: false,
            resource: resource.as_ref().map(|r| r.uri.as_str()),
            service_account: account.as_ref(),
            authorization_details: None,
        },
    )
    .await?;
    let actor = match &account {
        Some(account) => format!("service_account:{}", account.id),
        None => format!("client:{}", client.client_id),
    };
    ctx.audit(Event::new(&ctx.tenant.id, actor, "token.client_credentials")).await;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(scopes: &[&str]) -> Resource {
        Resource {
            uri: "https://files.example/mcp".into(),
            name: "files".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            step_up: false,
            accepts_agents: false,
            default_scopes: None,
        }
    }

    #[test]
    fn a_machine_token_carries_only_what_the_client_was_granted() {
        let files = resource(&["files:read", "files:write"]);
        let granted: Vec<String> = ["files:read", "reports:run", "openid"].map(str::to_owned).to_vec();
        // (requested, resource, expected: Ok(scopes) or Err(()) for invalid_scope)
        type Case<'a> = (Option<&'a str>, Option<&'a Resource>, Result<&'a [&'a str], ()>);
        let cases: [Case<'_>; 8] = [
            // Nothing asked: every granted scope the resource also offers, none about a user.
            (None, Some(&files), Ok(&["files:read"])),
            (None, None, Ok(&["files:read", "reports:run"])),
            (Some("files:read"), Some(&files), Ok(&["files:read"])),
            // The resource offers files:write, but the client was never granted it.
            (Some("files:write"), Some(&files), Err(())),
            (Some("files:read files:write"), Some(&files), Err(())),
            // Granted, but not a scope of the resource the token is for.
            (Some("reports:run"), Some(&files), Err(())),
            (Some("openid"), None, Err(())),
            (Some("unknown"), None, Err(())),
        ];
        for (requested, resource, expected) in cases {
            let got = machine_scopes(requested, &granted, resource);
            match expected {
                Ok(scopes) => assert_eq!(got.expect("allowed").as_ref(), scopes, "{requested:?}"),
                Err(()) => assert!(
                    matches!(got, Err(ref e) if e.code == ErrorCode::InvalidScope),
                    "{requested:?} must be invalid_scope"
                ),
            }
        }
    }

    #[test]
    fn step_up_resources_admit_machines_only_when_they_say_so() {
        let mut r = resource(&[]);
        assert!(r.admits_machines());
        r.step_up = true;
        assert!(!r.admits_machines());
        r.accepts_agents = true;
        assert!(r.admits_machines());
    }
}
