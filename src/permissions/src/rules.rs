//! The permission API's rules: for a tool and an action, who may call it (a person, an agent, or
//! either; of which organization, holding which role), with which scopes, and whether it needs a fresh
//! passkey. First matching rule wins; no rule means deny.
//!
//! Safe by construction: a `step_up` rule applies to every caller, whatever later rules say. A person
//! steps up; an agent (who cannot show a passkey) is denied, unless the rule itself names what agents
//! get (`agents = "allow"`, still with the rule's scopes). So a catch-all `allow` further down can
//! never open a step-up tool to agents, and a step-up rule cannot be narrowed to people by accident
//! (`caller` on a step-up rule is refused when the configuration loads).

use serde::{Deserialize, Serialize};

use latchkey_proto::{AccessClaims, Acr, Caller};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
    /// Allowed after a passkey assertion at most `max_age` seconds old (acr `phr`).
    StepUp,
    /// Allowed once the person approves this very call (docs/approvals.md): every matching call.
    Approve,
}

/// What a `step_up` rule does for a caller whose client cannot re-authorize (`fallback`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The RFC 9470 challenge, whatever the client (the default).
    #[default]
    None,
    /// The person approves the call instead.
    Approve,
}

/// Whether the caller's client acts on an RFC 9470 challenge (asks for a new token). MCP clients do
/// not (the MCP TypeScript SDK refreshes and gives up); a backend says so in its decision request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reauthorize {
    Can,
    Cannot,
}

/// What an agent gets from a `step_up` rule.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentEffect {
    #[default]
    Deny,
    Allow,
}

/// Which callers a rule is for (`caller = "person"` / `"agent"`; any by default).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallerMatch {
    #[default]
    Any,
    Person,
    Agent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A tool name, or `*`.
    pub tool: String,
    /// An action name, or `*` (the default).
    #[serde(default = "any")]
    pub action: String,
    /// Scopes the token must carry, all of them.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub caller: CallerMatch,
    /// Only for tokens of this issuer (with several issuers, organization slugs are per issuer).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Only for callers of this organization (the token's `org`).
    #[serde(default)]
    pub organization: Option<String>,
    /// Only for callers holding at least one of these roles (the token's `roles`).
    #[serde(default)]
    pub roles: Vec<String>,
    pub effect: Effect,
    /// For `step_up`: how old the passkey assertion may be, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age: i64,
    /// For `step_up`: what an agent gets (it cannot step up). Unset: deny.
    #[serde(default)]
    pub agents: Option<AgentEffect>,
    /// For `step_up`: a person whose client cannot re-authorize approves the call instead.
    #[serde(default)]
    pub fallback: Fallback,
}

fn any() -> String {
    "*".to_owned()
}

fn default_max_age() -> i64 {
    300
}

/// Rules that could not mean what they seem to say, refused when the configuration loads.
pub fn check(rules: &[Rule]) -> Result<(), String> {
    for (index, rule) in rules.iter().enumerate() {
        let rule_no = index + 1;
        if rule.effect == Effect::StepUp && rule.caller != CallerMatch::Any {
            return Err(format!(
                "rule {rule_no} (tool {:?}): a step_up rule applies to every caller; drop `caller` and say what agents get with `agents = \"allow\"` or `\"deny\"` (the default)",
                rule.tool
            ));
        }
        if rule.effect != Effect::StepUp && rule.agents.is_some() {
            return Err(format!("rule {rule_no} (tool {:?}): `agents` belongs only on a step_up rule", rule.tool));
        }
        if rule.effect != Effect::StepUp && rule.fallback != Fallback::None {
            return Err(format!("rule {rule_no} (tool {:?}): `fallback` belongs only on a step_up rule", rule.tool));
        }
        if rule.effect == Effect::Approve && rule.caller == CallerMatch::Agent {
            return Err(format!("rule {rule_no} (tool {:?}): an approve rule asks a person; an agent has nobody to ask", rule.tool));
        }
        if rule.effect == Effect::StepUp && rule.max_age <= 0 {
            return Err(format!("rule {rule_no} (tool {:?}): max_age must be positive", rule.tool));
        }
    }
    Ok(())
}

impl Rule {
    fn matches(&self, tool: &str, action: &str, claims: &AccessClaims) -> bool {
        (self.tool == "*" || self.tool == tool)
            && (self.action == "*" || self.action == action)
            && match self.caller {
                CallerMatch::Any => true,
                CallerMatch::Person => claims.caller == Caller::Person,
                CallerMatch::Agent => claims.caller == Caller::Agent,
            }
            && self.issuer.as_ref().is_none_or(|issuer| *issuer == claims.iss)
            && self.organization.as_ref().is_none_or(|org| claims.org.as_ref() == Some(org))
            && (self.roles.is_empty() || self.roles.iter().any(|role| claims.roles().contains(role)))
    }
}

/// The outcome for one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow { rule: usize },
    Deny { rule: Option<usize>, reason: &'static str },
    /// The token lacks a scope the rule requires (RFC 6750 `insufficient_scope`).
    InsufficientScope { rule: usize, scope: String },
    /// RFC 9470: a fresh, phishing-resistant sign-in is needed.
    StepUp { rule: usize, max_age: i64 },
    /// The person must approve this call (`approve`, or a `step_up` rule's fallback); the permission
    /// API asks Latchkey (CIBA) and turns this into one of the three below.
    NeedsApproval { rule: usize },
    /// Waiting for the person's answer at `approval_uri`.
    PendingApproval { rule: usize, approval_id: String, approval_uri: String, binding_message: String, expires_in: i64 },
    /// The person approved exactly this call; this use spends the approval.
    Approved { rule: usize, approval_id: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Allow { .. } => "allow",
            Outcome::Deny { .. } | Outcome::InsufficientScope { .. } => "deny",
            Outcome::StepUp { .. } => "step_up",
            Outcome::NeedsApproval { .. } | Outcome::PendingApproval { .. } => "pending_approval",
            Outcome::Approved { .. } => "allow",
        }
    }

    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<usize> {
        match self {
            Outcome::Allow { rule }
            | Outcome::InsufficientScope { rule, .. }
            | Outcome::StepUp { rule, .. }
            | Outcome::NeedsApproval { rule }
            | Outcome::PendingApproval { rule, .. }
            | Outcome::Approved { rule, .. } => Some(*rule),
            Outcome::Deny { rule, .. } => *rule,
        }
    }
}

/// The phishing-resistant level only a passkey assertion reaches (docs/acr.md).
pub const STEP_UP_ACR: Acr = Acr::Phr;

pub fn decide(rules: &[Rule], claims: &AccessClaims, tool: &str, action: &str, now: i64, reauthorize: Reauthorize) -> Outcome {
    let Some((index, rule)) = rules.iter().enumerate().find(|(_, r)| r.matches(tool, action, claims)) else {
        return Outcome::Deny { rule: None, reason: "no rule allows this call" };
    };
    // An agent never carries a person's passkey sign-in, whatever its token claims; refused before the
    // scopes, so its client is not sent off to get a scope that would not help.
    let agent_on_step_up = rule.effect == Effect::StepUp && claims.is_agent();
    if agent_on_step_up && rule.agents.unwrap_or_default() == AgentEffect::Deny {
        return Outcome::Deny { rule: Some(index), reason: "this tool needs a person's passkey; agents may not call it" };
    }
    // A person's yes cannot be had for an agent: there is nobody behind its token to ask.
    if rule.effect == Effect::Approve && claims.is_agent() {
        return Outcome::Deny { rule: Some(index), reason: "this tool needs a person's approval; agents may not call it" };
    }
    if let Some(missing) = rule.scopes.iter().find(|s| !claims.has_scope(s)) {
        return Outcome::InsufficientScope { rule: index, scope: missing.clone() };
    }
    match rule.effect {
        Effect::Deny => Outcome::Deny { rule: Some(index), reason: "a rule denies this call" },
        Effect::Allow => Outcome::Allow { rule: index },
        Effect::Approve => Outcome::NeedsApproval { rule: index },
        // `agents = "allow"`: the rule's scopes were all it asked of an agent.
        Effect::StepUp if agent_on_step_up => Outcome::Allow { rule: index },
        Effect::StepUp => {
            let fresh = claims.acr == Some(STEP_UP_ACR)
                && claims.auth_time.is_some_and(|t| now - t <= rule.max_age);
            if fresh {
                Outcome::Allow { rule: index }
            } else if rule.fallback == Fallback::Approve && reauthorize == Reauthorize::Cannot {
                Outcome::NeedsApproval { rule: index }
            } else {
                Outcome::StepUp { rule: index, max_age: rule.max_age }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str, agent: bool, acr: Option<Acr>, auth_time: Option<i64>) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer".into(),
            sub: if agent { "client".into() } else { "user".into() },
            aud: "https://api".into(),
            client_id: "client".into(),
            scope: scope.into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            auth_time: if agent { None } else { auth_time },
            acr,
            amr: None,
            sid: None,
            caller: if agent { Caller::Agent } else { Caller::Person },
            org: None,
            roles: None,
            grant_id: None,
            status: None,
            authorization_details: None,
        }
    }

    fn rules() -> Vec<Rule> {
        toml::from_str::<std::collections::BTreeMap<String, Vec<Rule>>>(
            r#"
            [[rules]]
            tool = "files.delete"
            scopes = ["files:write"]
            effect = "step_up"
            max_age = 300
            [[rules]]
            tool = "files.read"
            scopes = ["files:read"]
            effect = "allow"
            [[rules]]
            tool = "*"
            action = "admin"
            effect = "deny"
            [[rules]]
            tool = "*"
            effect = "allow"
            "#,
        )
        .expect("rules")
        .remove("rules")
        .expect("rules")
    }

    #[test]
    fn first_match_wins_and_the_default_is_deny() {
        let rules = rules();
        let now = 10_000;
        let person = claims("files:read files:write", false, Some(Acr::Mfa), Some(now - 10));
        assert_eq!(decide(&rules, &person, "files.read", "call", now, Reauthorize::Can), Outcome::Allow { rule: 1 });
        assert_eq!(decide(&rules, &person, "files.delete", "call", now, Reauthorize::Can), Outcome::StepUp { rule: 0, max_age: 300 });
        let fresh = claims("files:write", false, Some(Acr::Phr), Some(now - 10));
        assert_eq!(decide(&rules, &fresh, "files.delete", "call", now, Reauthorize::Can), Outcome::Allow { rule: 0 });
        let stale = claims("files:write", false, Some(Acr::Phr), Some(now - 301));
        assert!(matches!(decide(&rules, &stale, "files.delete", "call", now, Reauthorize::Can), Outcome::StepUp { .. }));
        let no_scope = claims("", false, None, Some(now));
        assert_eq!(
            decide(&rules, &no_scope, "files.read", "call", now, Reauthorize::Can),
            Outcome::InsufficientScope { rule: 1, scope: "files:read".into() }
        );
        // The step-up rule holds for agents too: the catch-all allow below never reaches them.
        let agent = claims("files:write", true, None, None);
        assert!(matches!(decide(&rules, &agent, "files.delete", "call", now, Reauthorize::Can), Outcome::Deny { rule: Some(0), .. }));
        let agent_claiming_phr = AccessClaims {
            caller: Caller::Agent,
            acr: Some(Acr::Phr),
            auth_time: Some(now),
            ..claims("files:write", true, None, None)
        };
        assert!(matches!(decide(&rules, &agent_claiming_phr, "files.delete", "call", now, Reauthorize::Can), Outcome::Deny { rule: Some(0), .. }));
        let agent_without_scope = claims("files:read", true, None, None);
        assert!(matches!(decide(&rules, &agent_without_scope, "files.delete", "call", now, Reauthorize::Can), Outcome::Deny { rule: Some(0), .. }));
        assert!(matches!(decide(&rules, &person, "billing", "admin", now, Reauthorize::Can), Outcome::Deny { rule: Some(2), .. }));
        assert_eq!(decide(&rules, &person, "unknown", "call", now, Reauthorize::Can), Outcome::Allow { rule: 3 });
        assert!(matches!(decide(&[], &person, "unknown", "call", now, Reauthorize::Can), Outcome::Deny { rule: None, .. }));
    }

    fn parse(text: &str) -> Vec<Rule> {
        toml::from_str::<std::collections::BTreeMap<String, Vec<Rule>>>(text).expect("rules").remove("rules").expect("rules")
    }

    #[test]
    fn a_step_up_rule_says_itself_what_agents_get() {
        let rules = parse(
            r#"
            [[rules]]
            tool = "deploy"
            scopes = ["deploy"]
            effect = "step_up"
            agents = "allow"
            "#,
        );
        check(&rules).expect("valid");
        let now = 10_000;
        assert_eq!(decide(&rules, &claims("deploy", true, None, None), "deploy", "call", now, Reauthorize::Can), Outcome::Allow { rule: 0 });
        assert!(matches!(decide(&rules, &claims("", true, None, None), "deploy", "call", now, Reauthorize::Can), Outcome::InsufficientScope { .. }));
        let person = claims("deploy", false, Some(Acr::Mfa), Some(now));
        assert!(matches!(decide(&rules, &person, "deploy", "call", now, Reauthorize::Can), Outcome::StepUp { .. }));
    }

    #[test]
    fn approval_is_for_people_and_the_fallback_only_for_clients_that_cannot_reauthorize() {
        let rules = parse(
            r#"
            [[rules]]
            tool = "billing.refund"
            scopes = ["billing"]
            effect = "approve"
            [[rules]]
            tool = "files.delete"
            effect = "step_up"
            fallback = "approve"
            "#,
        );
        check(&rules).expect("valid");
        let now = 10_000;
        let person = claims("billing", false, Some(Acr::Mfa), Some(now));
        // (tool, claims, client, expected)
        let cases = [
            ("billing.refund", person.clone(), Reauthorize::Can, Outcome::NeedsApproval { rule: 0 }),
            ("billing.refund", person.clone(), Reauthorize::Cannot, Outcome::NeedsApproval { rule: 0 }),
            ("billing.refund", claims("", false, Some(Acr::Phr), Some(now)), Reauthorize::Cannot, Outcome::InsufficientScope { rule: 0, scope: "billing".into() }),
            ("files.delete", person.clone(), Reauthorize::Can, Outcome::StepUp { rule: 1, max_age: 300 }),
            ("files.delete", person.clone(), Reauthorize::Cannot, Outcome::NeedsApproval { rule: 1 }),
            ("files.delete", claims("", false, Some(Acr::Phr), Some(now - 10)), Reauthorize::Cannot, Outcome::Allow { rule: 1 }),
        ];
        for (tool, claims, reauthorize, expected) in cases {
            assert_eq!(decide(&rules, &claims, tool, "call", now, reauthorize), expected, "{tool} {reauthorize:?}");
        }
        let agent = claims("billing", true, None, None);
        assert!(matches!(decide(&rules, &agent, "billing.refund", "call", now, Reauthorize::Cannot), Outcome::Deny { rule: Some(0), .. }));
        assert!(matches!(decide(&rules, &agent, "files.delete", "call", now, Reauthorize::Cannot), Outcome::Deny { rule: Some(1), .. }));
    }

    #[test]
    fn rules_that_could_mislead_are_refused() {
        for (text, why) in [
            ("tool = \"x\"\neffect = \"step_up\"\ncaller = \"person\"", "step_up with caller"),
            ("tool = \"x\"\neffect = \"step_up\"\ncaller = \"agent\"", "step_up with caller"),
            ("tool = \"x\"\neffect = \"allow\"\nagents = \"allow\"", "agents without step_up"),
            ("tool = \"x\"\neffect = \"step_up\"\nmax_age = 0", "max_age 0"),
            ("tool = \"x\"\neffect = \"allow\"\nfallback = \"approve\"", "fallback without step_up"),
            ("tool = \"x\"\neffect = \"approve\"\ncaller = \"agent\"", "approve for agents"),
        ] {
            let rules = parse(&format!("[[rules]]\n{text}"));
            assert!(check(&rules).is_err(), "{why} must be refused");
        }
        assert!(check(&rules()).is_ok());
    }

    #[test]
    fn organization_role_and_issuer_narrow_a_rule() {
        let rules: Vec<Rule> = toml::from_str::<std::collections::BTreeMap<String, Vec<Rule>>>(
            r#"
            [[rules]]
            tool = "deploy"
            organization = "acme"
            roles = ["release-manager", "admin"]
            issuer = "https://issuer"
            effect = "allow"
            [[rules]]
            tool = "deploy"
            caller = "agent"
            organization = "acme"
            effect = "allow"
            "#,
        )
        .expect("rules")
        .remove("rules")
        .expect("rules");
        let with = |org: Option<&str>, roles: &[&str], caller: &str| AccessClaims {
            org: org.map(str::to_owned),
            roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
            caller: if caller == "agent" { Caller::Agent } else { Caller::Person },
            ..claims("", false, None, Some(1))
        };
        assert_eq!(decide(&rules, &with(Some("acme"), &["admin"], "person"), "deploy", "call", 2, Reauthorize::Can), Outcome::Allow { rule: 0 });
        // Right organization, no matching role: only the agent rule is left, and a person is not one.
        assert!(matches!(decide(&rules, &with(Some("acme"), &["viewer"], "person"), "deploy", "call", 2, Reauthorize::Can), Outcome::Deny { rule: None, .. }));
        assert_eq!(decide(&rules, &with(Some("acme"), &[], "agent"), "deploy", "call", 2, Reauthorize::Can), Outcome::Allow { rule: 1 });
        assert!(matches!(decide(&rules, &with(Some("other"), &["admin"], "person"), "deploy", "call", 2, Reauthorize::Can), Outcome::Deny { rule: None, .. }));
        assert!(matches!(decide(&rules, &with(None, &["admin"], "agent"), "deploy", "call", 2, Reauthorize::Can), Outcome::Deny { rule: None, .. }));
        let other_issuer = AccessClaims { iss: "https://elsewhere".into(), ..with(Some("acme"), &["admin"], "person") };
        assert!(matches!(decide(&rules, &other_issuer, "deploy", "call", 2, Reauthorize::Can), Outcome::Deny { rule: None, .. }));
    }
}
