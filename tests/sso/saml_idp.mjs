// A SAML 2.0 identity provider shaped like Microsoft Entra ID, for tests/sso_saml.rs: its own RSA keys
// and certificates (node crypto + node-forge), responses signed by xml-crypto (an independent XML-DSig
// implementation), Entra's layout and claim URIs (learn.microsoft.com, "Single sign-on SAML protocol").
//
//   GET  /{TID}/federationmetadata/2007-06/federationmetadata.xml[?keys=primary|both|secondary]
//        the IdP's metadata, with the byte-order mark Entra's starts with
//   POST /sp                  the SP's metadata (XML): its entity id, ACS URL and signing certificate
//   GET  /{TID}/saml2?SAMLRequest=…&SigAlg=…&Signature=…&login_hint=…
//        HTTP-Redirect binding: checks the AuthnRequest's signature with the SP's certificate, its
//        Issuer and ACS URL, then answers for the account named by login_hint with a page holding the
//        HTTP-POST form (action = ACS URL, SAMLResponse)
//   GET  /{TID}/saml2/inspect?…   the same checks; answers {"id", "acs"} of the AuthnRequest
//   POST /sign                JSON options → {"SAMLResponse": …}: crafted responses for the refusal
//        cases (wrong audience, expired, SHA-1, unsigned, XSW1–8, comments, DTD, oversized, …)
//
// Environment: PORT, CERT, KEY (TLS, PEM files; without them plain http, for the browser test), TID,
// USERS (JSON: login_hint -> claims; a request without login_hint answers for the first).
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import forge from 'node-forge';
import { SignedXml } from 'xml-crypto';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';

const port = Number(process.env.PORT);
const tid = process.env.TID;
const users = JSON.parse(process.env.USERS);
const tls = Boolean(process.env.CERT);
const base = `${tls ? 'https' : 'http'}://localhost:${port}`;
const entityId = `https://sts.windows.net/${tid}/`;
const ssoUrl = `${base}/${tid}/saml2`;

function keyPair(commonName) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = crypto.randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 86400e3);
  cert.validity.notAfter = new Date(Date.now() + 3 * 365 * 86400e3);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  const der = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return { privateKey, pem, der };
}

const keys = {
  primary: keyPair('Microsoft Azure Federated SSO Certificate'),
  secondary: keyPair('Microsoft Azure Federated SSO Certificate (new)'),
  rogue: keyPair('Not this directory'),
};
let sp = null;

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const iso = (offsetSeconds = 0) => new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, '.000Z');
const id = () => `_${crypto.randomUUID()}`;

function keyDescriptor(der) {
  return `<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>${der}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>`;
}

function metadata(which) {
  const ders = which === 'both' ? [keys.primary.der, keys.secondary.der] : [keys[which || 'primary'].der];
  const kds = ders.map(keyDescriptor).join('');
  // Entra's document: a WS-Federation RoleDescriptor before the SAML IDPSSODescriptor.
  return '\ufeff<?xml version="1.0" encoding="utf-8"?>' +
    `<EntityDescriptor ID="${id()}" entityID="${entityId}" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` +
    `<RoleDescriptor xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">${kds}</RoleDescriptor>` +
    `<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${kds}` +
    `<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${ssoUrl}"/>` +
    `<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${ssoUrl}"/>` +
    `<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${ssoUrl}"/>` +
    '</IDPSSODescriptor></EntityDescriptor>';
}

function attribute(name, values) {
  const list = (Array.isArray(values) ? values : [values]).filter((v) => v !== undefined && v !== null);
  if (list.length === 0) return '';
  return `<Attribute Name="${name}">${list.map((v) => `<AttributeValue>${esc(v)}</AttributeValue>`).join('')}</Attribute>`;
}

// An Entra-shaped Response (unsigned); `o` may override every value the refusal cases change.
function responseXml(o) {
  const u = o.user;
  const acs = o.acs;
  const issuer = o.issuer ?? entityId;
  const irt = o.in_response_to ? ` InResponseTo="${esc(o.in_response_to)}"` : '';
  const destination = o.destination === null ? '' : ` Destination="${esc(o.destination ?? acs)}"`;
  const issued = iso(o.issue_offset ?? 0);
  const audience = o.omit_audience ? '' : `<AudienceRestriction><Audience>${esc(o.audience)}</Audience></AudienceRestriction>`;
  const padding = o.pad_groups ? Array.from({ length: o.pad_groups }, (_, i) => `group-${i}-${'x'.repeat(64)}`) : [];
  const nameIdFormat = o.name_id_format ?? 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
  return `<samlp:Response ID="${id()}" Version="2.0" IssueInstant="${issued}"${destination}${irt} xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">${esc(issuer)}</Issuer>` +
    '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>' +
    `<Assertion ID="${o.assertion_id ?? id()}" IssueInstant="${issued}" Version="2.0" xmlns="urn:oasis:names:tc:SAML:2.0:assertion">` +
    `<Issuer>${esc(issuer)}</Issuer>` +
    `<Subject><NameID Format="${nameIdFormat}">${esc(u.nameid)}</NameID>` +
    `<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><SubjectConfirmationData${irt} NotOnOrAfter="${iso(o.not_on_or_after_offset ?? 300)}" Recipient="${esc(o.recipient ?? acs)}"/></SubjectConfirmation></Subject>` +
    `<Conditions NotBefore="${iso(o.not_before_offset ?? -300)}" NotOnOrAfter="${iso(o.not_on_or_after_offset ?? 3900)}">${audience}</Conditions>` +
    '<AttributeStatement>' +
    attribute('http://schemas.microsoft.com/identity/claims/tenantid', u.tid ?? tid) +
    attribute('http://schemas.microsoft.com/identity/claims/objectidentifier', u.oid) +
    attribute('http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress', u.email) +
    attribute('http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', u.upn ?? u.email) +
    attribute('http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname', u.given_name) +
    attribute('http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname', u.family_name) +
    attribute('http://schemas.microsoft.com/identity/claims/displayname', u.name) +
    attribute('http://schemas.microsoft.com/ws/2008/06/identity/claims/groups', [...(u.groups ?? []), ...padding]) +
    attribute('http://schemas.microsoft.com/identity/claims/identityprovider', `https://sts.windows.net/${tid}/`) +
    attribute('http://schemas.microsoft.com/claims/authnmethodsreferences', u.amr ?? ['http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password']) +
    '</AttributeStatement>' +
    `<AuthnStatement AuthnInstant="${issued}" SessionIndex="${id()}"><AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</AuthnContextClassRef></AuthnContext></AuthnStatement>` +
    '</Assertion></samlp:Response>';
}

const ALGS = {
  sha256: ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmlenc#sha256'],
  sha1: ['http://www.w3.org/2000/09/xmldsig#rsa-sha1', 'http://www.w3.org/2000/09/xmldsig#sha1'],
};

// Enveloped signature over the element `local` (Assertion or Response), placed after its Issuer, as
// Entra places it.
function sign(xml, local, key, alg) {
  const [signatureAlgorithm, digestAlgorithm] = ALGS[alg];
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.pem,
    signatureAlgorithm,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.getKeyInfoContent = SignedXml.getKeyInfoContent;
  const xpath = local === 'Response' ? "/*[local-name(.)='Response']" : "//*[local-name(.)='Assertion']";
  sig.addReference({
    xpath,
    digestAlgorithm,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

const byLocal = (node, local) => {
  const found = [];
  const walk = (n) => {
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (c.nodeType === 1) {
        if (c.localName === local) found.push(c);
        walk(c);
      }
    }
  };
  walk(node);
  return found;
};

// The attacker's values replace the signed person's in an unsigned copy (SAML Raider's match and
// replace): the subject, the object id, the email.
function makeEvil(element, evil) {
  for (const nameId of byLocal(element, 'NameID')) nameId.textContent = evil.nameid;
  for (const attr of byLocal(element, 'Attribute')) {
    const name = attr.getAttribute('Name');
    const value = name.endsWith('/objectidentifier') ? evil.oid : name.endsWith('/emailaddress') || name.endsWith('claims/name') ? evil.email : null;
    if (value !== null) for (const v of byLocal(attr, 'AttributeValue')) v.textContent = value;
  }
}

const withoutSignature = (element) => {
  for (const s of byLocal(element, 'Signature')) if (s.parentNode === element) element.removeChild(s);
};

// The eight XML signature wrapping attacks of "On Breaking SAML: Be Whoever You Want to Be"
// (Somorovsky et al., USENIX Security 2012), arranged as SAML Raider (CompassSecurity) builds them.
function wrap(xml, kind, evil) {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const response = doc.documentElement;
  const assertion = byLocal(response, 'Assertion')[0];
  switch (kind) {
    case 'XSW1': case 'XSW2': {
      // Response signature: the signed original moves into (XSW1) or before (XSW2) the signature of
      // an evil response that keeps the outside.
      const original = response.cloneNode(true);
      withoutSignature(original);
      makeEvil(response, evil);
      const signature = byLocal(response, 'Signature').find((s) => s.parentNode === response);
      if (kind === 'XSW1') signature.appendChild(original); else response.insertBefore(original, signature);
      response.setAttribute('ID', '_evil_response_ID');
      break;
    }
    case 'XSW3': case 'XSW4': {
      const evilAssertion = assertion.cloneNode(true);
      makeEvil(evilAssertion, evil);
      withoutSignature(evilAssertion);
      evilAssertion.setAttribute('ID', '_evil_assertion_ID');
      if (kind === 'XSW3') response.insertBefore(evilAssertion, assertion);
      else { response.appendChild(evilAssertion); evilAssertion.appendChild(assertion); }
      break;
    }
    case 'XSW5': {
      // The signature stays in the (now evil) first assertion; an unsigned copy of the original at the end.
      const copy = assertion.cloneNode(true);
      withoutSignature(copy);
      makeEvil(assertion, evil);
      response.appendChild(copy);
      assertion.setAttribute('ID', '_evil_assertion_ID');
      break;
    }
    case 'XSW6': case 'XSW8': {
      const signature = byLocal(assertion, 'Signature').find((s) => s.parentNode === assertion);
      const copy = assertion.cloneNode(true);
      withoutSignature(copy);
      makeEvil(assertion, evil);
      if (kind === 'XSW6') { signature.appendChild(copy); assertion.setAttribute('ID', '_evil_assertion_ID'); }
      else { const object = doc.createElementNS('http://www.w3.org/2000/09/xmldsig#', 'ds:Object'); signature.appendChild(object); object.appendChild(copy); }
      break;
    }
    case 'XSW7': {
      const extensions = doc.createElementNS('urn:oasis:names:tc:SAML:2.0:protocol', 'samlp:Extensions');
      response.insertBefore(extensions, assertion);
      const evilAssertion = assertion.cloneNode(true);
      makeEvil(evilAssertion, evil);
      withoutSignature(evilAssertion);
      extensions.appendChild(evilAssertion);
      break;
    }
    default: throw new Error(`unknown wrapping ${kind}`);
  }
  return new XMLSerializer().serializeToString(doc);
}

function build(o) {
  let xml = responseXml(o);
  const key = keys[o.key ?? 'primary'];
  const alg = o.alg ?? 'sha256';
  const what = o.sign ?? 'assertion';
  if (what === 'assertion' || what === 'both') xml = sign(xml, 'Assertion', key, alg);
  if (what === 'response' || what === 'both') xml = sign(xml, 'Response', key, alg);
  if (o.xsw) xml = wrap(xml, o.xsw, o.evil);
  if (o.tamper_email) xml = xml.replace(esc(o.user.email), esc(o.tamper_email));
  if (o.comment_in_nameid) {
    // The signed NameID "victim@acme.test.evil.test" becomes "victim@acme.test<!---->.evil.test":
    // canonicalisation without comments leaves the digest as it was.
    xml = xml.replace(`>${esc(o.user.nameid)}<`, `>${esc(o.user.nameid.slice(0, o.comment_in_nameid))}<!---->${esc(o.user.nameid.slice(o.comment_in_nameid))}<`);
  }
  if (o.doctype) xml = `<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY who SYSTEM "file:///etc/hostname">]>${xml.replace(esc(o.user.email), '&who;')}`;
  return Buffer.from(xml, 'utf8').toString('base64');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function registerSp(xml) {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const entity = doc.documentElement.getAttribute('entityID');
  const acs = byLocal(doc.documentElement, 'AssertionConsumerService')[0]?.getAttribute('Location');
  const der = byLocal(doc.documentElement, 'X509Certificate')[0]?.textContent.replace(/\s+/g, '');
  if (!entity || !acs || !der) throw new Error('SP metadata without entityID, ACS or certificate');
  const pem = `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  sp = { entity, acs, pem };
  return sp;
}

// SAML bindings §3.4.4.1: the signature covers the raw (URL-encoded) SAMLRequest, RelayState and
// SigAlg parameters, in that order.
function checkRedirect(rawQuery) {
  const raw = Object.fromEntries(rawQuery.split('&').map((p) => { const i = p.indexOf('='); return [p.slice(0, i), p.slice(i + 1)]; }));
  if (!raw.SAMLRequest || !raw.SigAlg || !raw.Signature) throw new Error('unsigned AuthnRequest');
  if (decodeURIComponent(raw.SigAlg) !== 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256') throw new Error(`SigAlg ${raw.SigAlg}`);
  const signed = `SAMLRequest=${raw.SAMLRequest}${raw.RelayState !== undefined ? `&RelayState=${raw.RelayState}` : ''}&SigAlg=${raw.SigAlg}`;
  const signature = Buffer.from(decodeURIComponent(raw.Signature), 'base64');
  if (!crypto.verify('sha256', Buffer.from(signed), sp.pem, signature)) throw new Error('the AuthnRequest signature does not verify with the SP certificate');
  const xml = zlib.inflateRawSync(Buffer.from(decodeURIComponent(raw.SAMLRequest), 'base64')).toString('utf8');
  const request = new DOMParser().parseFromString(xml, 'text/xml').documentElement;
  const issuer = byLocal(request, 'Issuer')[0]?.textContent;
  if (issuer !== sp.entity) throw new Error(`AuthnRequest Issuer ${issuer}`);
  const acs = request.getAttribute('AssertionConsumerServiceURL');
  if (acs !== sp.acs) throw new Error(`AuthnRequest ACS ${acs}`);
  if (request.getAttribute('Destination') !== ssoUrl) throw new Error('AuthnRequest Destination');
  return { id: request.getAttribute('ID'), acs };
}

const handler = async (req, res) => {
  const url = new URL(req.url, base);
  const send = (status, type, body) => { res.writeHead(status, { 'content-type': type }); res.end(body); };
  try {
    if (req.method === 'GET' && url.pathname === `/${tid}/federationmetadata/2007-06/federationmetadata.xml`) {
      return send(200, 'application/samlmetadata+xml', metadata(url.searchParams.get('keys')));
    }
    if (req.method === 'POST' && url.pathname === '/sp') {
      return send(200, 'application/json', JSON.stringify(registerSp(await readBody(req))));
    }
    if (req.method === 'GET' && url.pathname === `/${tid}/saml2/inspect`) {
      // The same checks, answering with the request's id (for crafted responses to answer it).
      return send(200, 'application/json', JSON.stringify(checkRedirect(req.url.split('?')[1] ?? '')));
    }
    if (req.method === 'GET' && url.pathname === `/${tid}/saml2`) {
      const request = checkRedirect(req.url.split('?')[1] ?? '');
      const hint = url.searchParams.get('login_hint') ?? Object.keys(users)[0];
      const user = users[hint];
      if (!user) return send(400, 'text/plain', `no test account ${hint}`);
      const saml = build({ user, in_response_to: request.id, acs: request.acs, audience: sp.entity });
      return send(200, 'text/html', `<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" action="${esc(request.acs)}"><input type="hidden" name="SAMLResponse" value="${saml}"/><noscript><button type="submit">Continue</button></noscript></form></body></html>`);
    }
    if (req.method === 'POST' && url.pathname === '/sign') {
      const o = JSON.parse(await readBody(req));
      o.user = typeof o.user === 'string' ? users[o.user] : o.user;
      o.acs ??= sp.acs;
      o.audience ??= sp.entity;
      return send(200, 'application/json', JSON.stringify({ SAMLResponse: build(o) }));
    }
    send(404, 'text/plain', 'not found');
  } catch (error) {
    console.log(`error: ${error.message}`);
    send(400, 'text/plain', error.message);
  }
};
const server = tls ? https.createServer({ cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) }, handler) : http.createServer(handler);
server.listen(port, '127.0.0.1', () => console.log('listening'));
