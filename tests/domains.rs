//! Verified domains against a real DNS server (dnsmasq on loopback): an organization claims a domain,
//! publishes the TXT record Latchkey shows, and verification succeeds, fails, refuses what it must,
//! and the periodic re-check notices a removed record.

mod common;

use common::{Deployment, DnsServer, Server, SmtpCatcher};

const ZONE: &str = "acme.test";
const RECORD: &str = "_latchkey-challenge.acme.test";

/// The TXT value `org domain add` printed (`name<TAB>TXT<TAB>value` on its last line).
fn printed_value(output: &str) -> String {
    let line = output.lines().last().expect("a record line");
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), 3, "{output}");
    assert_eq!(fields[0], RECORD, "{output}");
    assert_eq!(fields[1], "TXT");
    fields[2].to_owned()
}

fn fails_with(server: &Server, args: &[&str], expected: &str) {
    let output = server.cli_output(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

fn domain_state(server: &Server, org: &str) -> String {
    server.cli(&["org", "domain", "list", org])
}

fn audited(server: &Server, action: &str) -> usize {
    server.audit_actions().iter().filter(|e| e["action"] == action).count()
}

#[tokio::test]
async fn a_domain_is_verified_by_its_txt_record_and_the_recheck_notices_its_removal() {
    let mut dns = DnsServer::start(ZONE, &[]).await;
    let deployment = Deployment::new().await;
    let smtp = SmtpCatcher::start().await;
    // The server re-checks every second (the lease makes it once per second across nodes).
    let server = Server::start(
        &deployment,
        &smtp,
        &[("LATCHKEY_DNS_NAMESERVERS", &dns.address()), ("LATCHKEY_DOMAIN_RECHECK_INTERVAL", "1")],
    )
    .await;
    server.cli(&["org", "create", "acme", "--name", "Acme"]);
    server.cli(&["org", "create", "rival", "--name", "Rival"]);

    // Public suffixes and non-domains are refused; nothing is claimed.
    fails_with(&server, &["org", "domain", "add", "acme", "co.uk"], "public suffix");
    fails_with(&server, &["org", "domain", "add", "acme", "github.io"], "public suffix");
    fails_with(&server, &["org", "domain", "add", "acme", "127.0.0.1"], "not a domain name");
    assert_eq!(domain_state(&server, "acme"), "");

    let value = printed_value(&server.cli(&["org", "domain", "add", "acme", "Acme.Test."]));
    // Claiming again shows the same record.
    assert_eq!(printed_value(&server.cli(&["org", "domain", "add", "acme", "acme.test"])), value);
    assert!(domain_state(&server, "acme").starts_with("acme.test\tpending\t"));

    // No record yet, then a record with another value: refused, still pending.
    fails_with(&server, &["org", "domain", "verify", "acme", "acme.test"], "no TXT record at _latchkey-challenge.acme.test");
    dns.set(&[(RECORD, "somebody-elses-value")]).await;
    fails_with(&server, &["org", "domain", "verify", "acme", "acme.test"], "does not hold this organization's value");
    assert!(domain_state(&server, "acme").starts_with("acme.test\tpending\t"));

    // The published value (beside an unrelated one) verifies it.
    dns.set(&[(RECORD, "somebody-elses-value"), (RECORD, &value)]).await;
    let said = server.cli(&["org", "domain", "verify", "acme", "acme.test"]);
    assert!(said.contains("acme.test is verified for acme"), "{said}");
    assert!(domain_state(&server, "acme").starts_with("acme.test\tverified "));

    // Another organization may claim it (a claim blocks nobody), gets its own value, and cannot
    // verify it while acme holds it, even with its own record published.
    let rival_value = printed_value(&server.cli(&["org", "domain", "add", "rival", "acme.test"]));
    assert_ne!(rival_value, value);
    dns.set(&[(RECORD, &value), (RECORD, &rival_value)]).await;
    fails_with(&server, &["org", "domain", "verify", "rival", "acme.test"], "verified by another organization");

    // The DNS server stops answering: the re-check changes nothing.
    dns.stop();
    let said = server.cli_output_with(&["org", "domain", "recheck"], &[("LATCHKEY_DNS_TIMEOUT_MS", "300")]);
    assert!(String::from_utf8_lossy(&said.stdout).contains("acme.test\tno answer"), "{said:?}");
    assert!(domain_state(&server, "acme").starts_with("acme.test\tverified "));

    // The record is removed: the server's own periodic re-check flags it, once.
    dns.set(&[(RECORD, &rival_value)]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while audited(&server, "domain.lost") == 0 {
        assert!(std::time::Instant::now() < deadline, "the server's re-check did not flag the removed record");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(domain_state(&server, "acme").contains("verified, record missing since"), "{}", domain_state(&server, "acme"));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(audited(&server, "domain.lost"), 1, "a loss is reported once");

    // Within the grace period it stays verified; past it, the verification is withdrawn and the rival,
    // whose record is the one published now, can verify the domain.
    let said = server.cli(&["org", "domain", "recheck"]);
    assert!(said.contains("acme.test\trecord still missing"), "{said}");
    let said = server.cli_output_with(&["org", "domain", "recheck"], &[("LATCHKEY_DOMAIN_LOST_GRACE", "0")]);
    assert!(String::from_utf8_lossy(&said.stdout).contains("verification withdrawn"), "{said:?}");
    assert!(domain_state(&server, "acme").starts_with("acme.test\tpending\t"));
    assert!(audited(&server, "domain.withdrawn") >= 1);
    let said = server.cli(&["org", "domain", "verify", "rival", "acme.test"]);
    assert!(said.contains("verified for rival"), "{said}");

    // Removing a claim frees nothing else and is audited.
    server.cli(&["org", "domain", "remove", "acme", "acme.test"]);
    assert_eq!(domain_state(&server, "acme"), "");
    fails_with(&server, &["org", "domain", "remove", "acme", "acme.test"], "not claimed by this organization");
    assert!(domain_state(&server, "rival").starts_with("acme.test\tverified "));
    assert_eq!(audited(&server, "domain.verify"), 2);
}
