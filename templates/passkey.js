// Passkey ceremonies for Latchkey's hosted pages. The server (webauthn-rs) sends options with binary
// fields as base64url strings; the browser API wants ArrayBuffers, and the server wants base64url back.
"use strict";
(function () {
  const root = document.getElementById("passkey");
  if (!root || !window.PublicKeyCredential) return;
  const mode = root.dataset.mode;
  const base = root.dataset.base;
  const req = root.dataset.req || null;
  const errorBox = document.getElementById("passkey-error");
  const startButton = document.getElementById("passkey-start");

  const toBuffer = (b64u) => {
    const b64 = b64u.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64u.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  };
  const toB64u = (buffer) => {
    if (!buffer) return null;
    let text = "";
    for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  async function post(path, body) {
    const response = await fetch(base + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
      body: JSON.stringify(body),
    });
    const json = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(json.error_description || "Something went wrong. Reload the page and try again.");
    return json;
  }

  function showError(error) {
    if (!errorBox) return;
    const cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
    errorBox.textContent = cancelled ? "The passkey prompt was closed. Try again when you are ready." : error.message;
    errorBox.hidden = false;
    errorBox.focus && errorBox.setAttribute("tabindex", "-1");
    errorBox.focus && errorBox.focus();
  }

  async function enroll() {
    const start = await post("passkey/register/options", {});
    const options = start.options.publicKey;
    options.challenge = toBuffer(options.challenge);
    options.user.id = toBuffer(options.user.id);
    (options.excludeCredentials || []).forEach((c) => (c.id = toBuffer(c.id)));
    const credential = await navigator.credentials.create({ publicKey: options });
    const nameInput = document.getElementById("passkey-name");
    const result = await post("passkey/register", {
      ceremony: start.ceremony,
      name: nameInput ? nameInput.value : "",
      req,
      credential: {
        id: credential.id,
        rawId: toB64u(credential.rawId),
        type: credential.type,
        response: {
          attestationObject: toB64u(credential.response.attestationObject),
          clientDataJSON: toB64u(credential.response.clientDataJSON),
          transports: credential.response.getTransports ? credential.response.getTransports() : undefined,
        },
        extensions: credential.getClientExtensionResults(),
      },
    });
    if (result.recovery_codes) showRecoveryCodes(result.recovery_codes, result.next);
    else window.location.assign(result.next);
  }

  function showRecoveryCodes(codes, next) {
    const section = document.getElementById("recovery");
    const list = document.getElementById("recovery-codes");
    codes.forEach((code) => {
      const item = document.createElement("li");
      item.textContent = code;
      list.appendChild(item);
    });
    const text = codes.join("\n") + "\n";
    document.getElementById("recovery-copy").onclick = () => navigator.clipboard.writeText(text);
    document.getElementById("recovery-download").onclick = () => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      link.download = "recovery-codes.txt";
      link.click();
    };
    document.getElementById("recovery-continue").href = next;
    startButton.closest(".actions").hidden = true;
    const nameField = document.getElementById("passkey-name");
    if (nameField) nameField.closest(".field").hidden = true;
    section.hidden = false;
    document.getElementById("recovery-heading").setAttribute("tabindex", "-1");
    document.getElementById("recovery-heading").focus();
  }

  async function authenticate(which, mediation, signal) {
    const start = await post("passkey/authenticate/options", { mode: which });
    const options = start.options.publicKey;
    options.challenge = toBuffer(options.challenge);
    (options.allowCredentials || []).forEach((c) => (c.id = toBuffer(c.id)));
    const request = { publicKey: options };
    if (mediation) request.mediation = mediation;
    if (signal) request.signal = signal;
    const credential = await navigator.credentials.get(request);
    const result = await post("passkey/authenticate", {
      ceremony: start.ceremony,
      mode: which,
      req,
      credential: {
        id: credential.id,
        rawId: toB64u(credential.rawId),
        type: credential.type,
        response: {
          authenticatorData: toB64u(credential.response.authenticatorData),
          clientDataJSON: toB64u(credential.response.clientDataJSON),
          signature: toB64u(credential.response.signature),
          userHandle: toB64u(credential.response.userHandle),
        },
        extensions: credential.getClientExtensionResults(),
      },
    });
    window.location.assign(result.next);
  }

  const run = (action) => () => {
    if (errorBox) errorBox.hidden = true;
    startButton.disabled = true;
    action()
      .catch(showError)
      .finally(() => (startButton.disabled = false));
  };

  if (mode === "enroll") startButton.onclick = run(enroll);
  if (mode === "verify") startButton.onclick = run(() => authenticate("session"));
  if (mode === "login") {
    // The button signs in with any passkey of this site; conditional UI offers the same passkeys in the
    // email field's autofill. The button aborts the pending conditional request first.
    let conditional = null;
    startButton.hidden = false;
    document.getElementById("passkey-divider").hidden = false;
    startButton.onclick = run(() => {
      if (conditional) conditional.abort();
      return authenticate("discoverable");
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
        if (!available) return;
        conditional = new AbortController();
        authenticate("discoverable", "conditional", conditional.signal).catch((error) => {
          if (error.name !== "AbortError" && error.name !== "NotAllowedError") showError(error);
        });
      });
    }
  }
})();
