// An unmodified MCP client on the official TypeScript SDK, driven by tests/browser.rs: it connects
// with only the URL (MCP_URL; discovery, dynamic registration, PKCE, the hosted sign-in), then calls
// the tools the Rust test names and reports each result as it is — no step-up handling, no knowledge
// of approvals. What a model would relay to its user is the tool result's text.
//
// With URL_ELICITATION=1 it declares URL-mode elicitation (MCP 2025-11-25), as a client that can show
// its user a URL does, and reports a URLElicitationRequiredError's elicitations.
//
// Protocol on stdio, one JSON object per line. Out: {"event":"authorize","url":…} (the test signs
// in and answers with the redirect URL), {"event":"result",…}, {"event":"failed",…}. In (after
// connecting): {"call":name,"arguments":{…}} or {"quit":true}.

import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ElicitRequestSchema, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';

const mcpUrl = new URL(process.env.MCP_URL);
const redirectUrl = process.env.REDIRECT_URL;

const say = (event, data = {}) => process.stdout.write(JSON.stringify({ event, ...data }) + '\n');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** In-memory OAuth state, as a desktop MCP client keeps it. */
class Provider {
  constructor() {
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.discovery = undefined;
    this.pendingCode = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'MCP SDK approval client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
  discoveryState() { return this.discovery; }
  saveDiscoveryState(state) { this.discovery = state; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'client') this.client = undefined;
  }
  async redirectToAuthorization(url) {
    say('authorize', { url: url.toString() });
    const { value } = await lines.next();
    const callback = new URL(value.trim());
    if (callback.searchParams.get('error')) throw new Error(`authorization failed: ${value}`);
    this.pendingCode = callback.searchParams.get('code');
  }
}

const provider = new Provider();
let transport;
const urlElicitation = process.env.URL_ELICITATION === '1';
const client = new Client(
  { name: 'latchkey-approval-client', version: '1.0.0' },
  urlElicitation ? { capabilities: { elicitation: { url: {} } } } : {},
);
if (urlElicitation) client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));

async function main() {
  transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
    await transport.finishAuth(provider.pendingCode);
    transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    await client.connect(transport);
  }
  say('connected');
  for (;;) {
    const { value, done } = await lines.next();
    if (done) break;
    const command = JSON.parse(value);
    if (command.quit) break;
    let result;
    try {
      result = await client.callTool({ name: command.call, arguments: command.arguments ?? {} });
    } catch (error) {
      if (!(error instanceof UrlElicitationRequiredError)) throw error;
      say('result', { text: error.message, isError: true, elicitations: error.elicitations, sessionId: transport.sessionId ?? null });
      continue;
    }
    say('result', {
      text: result.content.map((c) => c.text).join('\n'),
      isError: result.isError ?? false,
      receipt: result._meta?.['io.latchkey/decision-receipt'] ?? null,
    });
  }
  await client.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    say('failed', { error: String(error?.stack ?? error) });
    process.exit(1);
  },
);
