// An OpenID Provider shaped like a Microsoft Entra ID directory, for tests/sso_oidc.rs: panva's
// oidc-provider (an independent, certified implementation) at https://localhost:PORT/TID/v2.0, with
// Entra's claims (tid, oid, xms_edov) in the ID token. Sign-in pages are replaced by an interaction
// that signs in the account named by login_hint at once: the test decides who the IdP says it is.
// /organizations/v2.0/.well-known/openid-configuration is the multi-tenant document, as Entra's.
//
// Environment: PORT, TID, CERT, KEY (PEM files), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// USERS (JSON: login_hint -> claims), CLIENT_JWKS (optional: the client uses private_key_jwt).
import https from 'node:https';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const prefix = `/${process.env.TID}/v2.0`;
const issuer = `https://localhost:${port}${prefix}`;
const users = JSON.parse(process.env.USERS);

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    // CLIENT_JWKS: the client authenticates with private_key_jwt, its keys given inline.
    ...(process.env.CLIENT_JWKS
      ? { token_endpoint_auth_method: 'private_key_jwt', jwks: JSON.parse(process.env.CLIENT_JWKS) }
      : { token_endpoint_auth_method: 'client_secret_basic' }),
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub', 'tid', 'oid', 'xms_edov', 'amr', 'acr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  conformIdTokenClaims: false,
  // The callback benchmark walks hundreds of sign-ins to the redirect before exchanging any code.
  ttl: { AuthorizationCode: 900 },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
  cookies: { keys: ['latchkey-test-idp'] },
  async findAccount(ctx, id) {
    const claims = users[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: claims.sub ?? id, ...claims }; } };
  },
});

const callback = provider.callback();
const server = https.createServer({ cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) }, async (req, res) => {
  try {
    if (req.url === '/organizations/v2.0/.well-known/openid-configuration') {
      // Entra's multi-tenant document: the directory's own metadata, its issuer the template with
      // the literal {tenantid} (login.microsoftonline.com/organizations/v2.0 serves exactly that).
      const own = await new Promise((resolve, reject) => {
        https.get(`${issuer}/.well-known/openid-configuration`, { rejectUnauthorized: false }, (r) => {
          let body = '';
          r.on('data', (c) => { body += c; });
          r.on('end', () => resolve(JSON.parse(body)));
        }).on('error', reject);
      });
      own.issuer = `https://localhost:${port}/{tenantid}/v2.0`;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(own));
      return;
    }
    if (!req.url.startsWith(prefix)) { res.statusCode = 404; res.end('not found'); return; }
    const inner = req.url.slice(prefix.length) || '/';
    if (inner.startsWith('/interaction/')) {
      req.originalUrl = req.url;
      const details = await provider.interactionDetails(req, res);
      const accountId = details.params.login_hint;
      if (!users[accountId]) { res.statusCode = 400; res.end(`no test account ${accountId}`); return; }
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId, amr: users[accountId].amr }, consent: { grantId } }, { mergeWithLastSubmission: false });
      return;
    }
    req.originalUrl = req.url;
    req.url = inner;
    callback(req, res);
  } catch (error) {
    res.statusCode = 500;
    res.end(String(error));
  }
});
server.listen(port, '127.0.0.1', () => console.log('listening'));
