// Hale: passkeys (WebAuthn) on the sign-in and account pages. The server
// makes the options and checks the answers (auth/passkey.go); this only
// carries them between it and navigator.credentials, turning base64url
// into bytes and back. No inline script anywhere (CSP script-src 'self').
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) { return; }

  function toBytes(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64(buf) {
    var b = new Uint8Array(buf), s = '';
    for (var i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = toBytes(c.id); });
  }
  // The browser's PublicKeyCredential as the JSON the server reads.
  function credentialJSON(c) {
    var r = c.response, out = {
      id: c.id, rawId: toB64(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (c.authenticatorAttachment) { out.authenticatorAttachment = c.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64(r.userHandle); }
    }
    return JSON.stringify(out);
  }
  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    return fetch(url, {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: body
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) { throw new Error(j.error || 'The request failed (' + res.status + '). Reload the page and try again.'); }
        return j;
      });
    });
  }
  function explain(err) {
    switch (err && err.name) {
      case 'NotAllowedError': return 'The passkey request was cancelled or timed out.';
      case 'InvalidStateError': return 'This device already holds a passkey for your account.';
      case 'SecurityError': return 'Passkeys only work on ' + location.origin + ' when it is the address Hale was set up with.';
    }
    return (err && err.message) || 'Something went wrong with the passkey.';
  }
  function show(el, msg) {
    if (!el) { return; }
    el.textContent = msg;
    el.hidden = !msg;
  }
  function busy(buttons, on) {
    buttons.forEach(function (b) { b.disabled = on; });
  }

  // The sign-in page: passwordless, or in place of the one-time code.
  var login = document.getElementById('passkey-login');
  if (login && login.getAttribute('data-origin') === location.origin) {
    var form = document.querySelector('form[action="/app/login"]');
    var error = document.getElementById('passkey-error');
    var buttons = Array.prototype.slice.call(document.querySelectorAll('.passkey-signin'));
    buttons.forEach(function (btn) {
      btn.hidden = false;
      btn.addEventListener('click', function () {
        var token = form.elements.token.value, next = form.elements.next.value;
        show(error, '');
        busy(buttons, true);
        post('/app/login/passkey/options', { token: token, ticket: btn.getAttribute('data-ticket') || '' }).then(function (c) {
          var pk = c.options.publicKey;
          pk.challenge = toBytes(pk.challenge);
          ids(pk.allowCredentials);
          return navigator.credentials.get({ publicKey: pk }).then(function (cred) {
            return post('/app/login/passkey', { token: token, ceremony: c.ceremony, credential: credentialJSON(cred), next: next });
          });
        }).then(function (done) {
          location.assign(done.next);
        }).catch(function (err) {
          busy(buttons, false);
          show(error, explain(err));
        });
      });
    });
  }

  // The account page: add a passkey.
  var add = document.getElementById('passkey-add');
  if (add && add.getAttribute('data-origin') === location.origin) {
    var note = document.getElementById('passkey-unsupported');
    if (note) { note.hidden = true; }
    add.hidden = false;
    var addError = document.getElementById('passkey-error');
    add.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var csrf = add.elements.csrf.value, name = add.elements.name.value;
      var submit = add.querySelector('button[type=submit]');
      show(addError, '');
      busy([submit], true);
      post('/app/account/passkeys/options', { csrf: csrf, password: add.elements.password.value }).then(function (c) {
        add.elements.password.value = '';
        var pk = c.options.publicKey;
        pk.challenge = toBytes(pk.challenge);
        pk.user.id = toBytes(pk.user.id);
        ids(pk.excludeCredentials);
        return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
          return post('/app/account/passkeys', { csrf: csrf, ceremony: c.ceremony, name: name, credential: credentialJSON(cred) });
        });
      }).then(function (done) {
        location.assign(done.next);
      }).catch(function (err) {
        busy([submit], false);
        show(addError, explain(err));
      });
    });
  }
})();
