// An MCP client built on the official TypeScript SDK, driven by tests/mcp.rs.
//
// It knows only the MCP server's URL (MCP_URL). From the first 401 the SDK discovers the protected
// resource metadata and the authorization server, registers itself (dynamic client registration; or,
// given CLIENT_METADATA_URL, uses that URL of its metadata document as its client_id), and sends the
// user to the authorization URL with PKCE and `resource`. The user is the Rust test: it
// reads {"event":"authorize","url":…} on our stdout, walks Latchkey's hosted pages, and answers with
// the redirect URL on our stdin. Then: list and call tools, outlive the access token (the SDK
// refreshes), and meet an RFC 9470 step-up challenge by asking for the acr_values/max_age it names —
// the SDK does not act on `insufficient_user_authentication` itself, so this client does, as a
// real client that supports step-up would.

import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const mcpUrl = new URL(process.env.MCP_URL);
const waitForTokenExpiry = Number(process.env.ACCESS_TOKEN_TTL_SECONDS ?? '0') * 1000 + 1500;
const redirectUrl = 'http://127.0.0.1:9/callback';

const say = (event, data = {}) => process.stdout.write(JSON.stringify({ event, ...data }) + '\n');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every HTTP exchange the SDK makes: method, URL, status, grant type, challenge. */
const exchanges = [];

/** In-memory OAuth state, as a desktop MCP client keeps it. */
class Provider {
  constructor() {
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.discovery = undefined;
    this.stepUp = undefined;
    this.pendingCode = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  // Set: the SDK uses this URL as its client_id when the server supports client metadata documents.
  get clientMetadataUrl() { return process.env.CLIENT_METADATA_URL || undefined; }
  get clientMetadata() {
    return {
      client_name: 'MCP SDK test client',
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
    if (this.stepUp) {
      // RFC 9470 §4: ask the authorization server for what the resource server asked for.
      url.searchParams.set('acr_values', this.stepUp.acr_values);
      url.searchParams.set('max_age', this.stepUp.max_age);
      this.stepUp = undefined;
    }
    say('authorize', { url: url.toString() });
    const { value } = await lines.next();
    const callback = new URL(value.trim());
    if (callback.searchParams.get('error')) throw new Error(`authorization failed: ${value}`);
    this.pendingCode = callback.searchParams.get('code');
  }
}

const provider = new Provider();

function challengeParams(header) {
  const params = {};
  for (const match of (header ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[match[1]] = match[2];
  return params;
}

/** The SDK's fetch, observed; a step-up challenge makes the client forget its tokens (no refresh). */
async function observedFetch(input, init) {
  const response = await fetch(input, init);
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const body = typeof init?.body === 'string' || init?.body instanceof URLSearchParams ? String(init.body) : '';
  const form = new URLSearchParams(url.pathname.endsWith('/token') ? body : '');
  const challenge = response.headers.get('www-authenticate');
  exchanges.push({
    method: init?.method ?? 'GET',
    url: url.origin + url.pathname,
    status: response.status,
    grant_type: form.get('grant_type'),
    resource: form.get('resource'),
    challenge,
  });
  const params = challengeParams(challenge);
  if (response.status === 401 && params.error === 'insufficient_user_authentication') {
    provider.stepUp = { acr_values: params.acr_values, max_age: params.max_age };
    provider.invalidateCredentials('tokens');
  }
  return response;
}

let client;
let transport;

async function connect() {
  transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: observedFetch });
  client = new Client({ name: 'latchkey-test-client', version: '1.0.0' });
  await client.connect(transport);
}

/** Runs `action`; when it needs a sign-in, finishes the authorization the SDK started and retries. */
async function authorized(action) {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await action();
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
      const code = provider.pendingCode;
      provider.pendingCode = undefined;
      await transport.finishAuth(code);
    }
  }
  throw new Error('still unauthorized after signing in');
}

const text = (result) => result.content.map((c) => c.text).join('\n');

async function main() {
  const results = {};
  await authorized(connect);
  results.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  results.whoami = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
  const read = await client.callTool({ name: 'files.read', arguments: { name: 'readme.txt' } });
  results.read = { text: text(read), isError: read.isError ?? false, receipt: read._meta?.['io.latchkey/decision-receipt'] };
  results.token_before_expiry = provider.tokens()?.access_token;

  // Outlive the access token: the next call gets 401 invalid_token and the SDK refreshes.
  await sleep(waitForTokenExpiry);
  results.list_after_expiry = text(await authorized(() => client.callTool({ name: 'files.list', arguments: {} })));
  results.token_after_refresh = provider.tokens()?.access_token;

  // The sensitive tool: a step-up challenge, a passkey sign-in, then the call goes through.
  const deleted = await authorized(() => client.callTool({ name: 'files.delete', arguments: { name: 'plan.md' } }));
  results.delete = { text: text(deleted), isError: deleted.isError ?? false };
  results.stepped_up_token = provider.tokens()?.access_token;
  results.list_after_delete = text(await client.callTool({ name: 'files.list', arguments: {} }));
  results.client_id = provider.clientInformation()?.client_id;
  await client.close();
  say('done', { results, exchanges });
}

main().then(
  () => process.exit(0),
  (error) => {
    say('failed', { error: String(error?.stack ?? error), exchanges });
    process.exit(1);
  },
);
