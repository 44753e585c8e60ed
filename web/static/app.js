// Hale clinician app: the idle-logoff warning and the BMI preview.
// No inline script anywhere (Content-Security-Policy script-src 'self').
(function () {
  'use strict';

  // Idle logoff. The server ends a session after idle-seconds without a
  // request; this only warns two minutes before and then signs out, so
  // the screen does not keep showing a chart. Activity in any tab counts
  // (localStorage), and "Stay signed in" makes a request to keep the
  // session alive.
  var body = document.body;
  var idle = parseInt(body.getAttribute('data-idle-seconds') || '0', 10);
  var box = document.getElementById('idle-warning');
  if (idle > 0 && box) {
    var warnBefore = Math.min(120, Math.floor(idle / 2));
    // The server may end a session up to 30 s early (it saves its
    // last-seen time at most every 30 s): sign out a little before.
    var limit = (idle - 30) * 1000;
    var key = 'hale.lastActivity';
    var local = Date.now();
    var last = function () {
      var shared = 0;
      try { shared = parseInt(localStorage.getItem(key) || '0', 10); } catch (e) { }
      return Math.max(local, shared);
    };
    var mark = function () {
      local = Date.now();
      try { localStorage.setItem(key, String(local)); } catch (e) { }
    };
    mark(); // this page load was a request
    var opener = null;
    var left = document.getElementById('idle-left');
    var show = function (ms) {
      var s = Math.max(0, Math.ceil(ms / 1000));
      left.textContent = Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
      if (box.hidden) {
        opener = document.activeElement;
        box.hidden = false;
        document.getElementById('idle-stay').focus();
      }
    };
    var hide = function () {
      if (!box.hidden) {
        box.hidden = true;
        if (opener && opener.focus) { opener.focus(); }
      }
    };
    var signOut = function (reason) {
      document.getElementById('logout-reason').value = reason;
      document.getElementById('logout-form').submit();
    };
    var tick = function () {
      var remaining = limit - (Date.now() - last());
      if (remaining <= 0) { signOut('idle'); return; }
      if (remaining <= warnBefore * 1000) { show(remaining); } else { hide(); }
    };
    setInterval(tick, 1000);
    document.getElementById('idle-stay').addEventListener('click', function () {
      fetch('/app/ping', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        if (r.status === 200) { mark(); hide(); } else { window.location = '/app/login?m=expired'; }
      });
    });
    document.getElementById('idle-out').addEventListener('click', function () { signOut(''); });
    box.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') { document.getElementById('idle-stay').click(); }
    });
  }

  // BMI preview on the vitals form (the server computes the stored one).
  var h = document.getElementById('v-height'), w = document.getElementById('v-weight'), out = document.getElementById('v-bmi');
  if (h && w && out) {
    var hu = document.querySelector('select[name=height_unit]'), wu = document.querySelector('select[name=weight_unit]');
    var update = function () {
      var hv = parseFloat(h.value.replace(',', '.')), wv = parseFloat(w.value.replace(',', '.'));
      if (!(hv > 0) || !(wv > 0)) { out.textContent = 'computed on save'; return; }
      var cm = hu.value === '[in_i]' ? hv * 2.54 : hv;
      var kg = wu.value === '[lb_av]' ? wv * 0.45359237 : wv;
      var bmi = kg / Math.pow(cm / 100, 2);
      out.textContent = isFinite(bmi) ? bmi.toFixed(1) + ' kg/m²' : 'computed on save';
    };
    [h, w, hu, wu].forEach(function (el) { el.addEventListener('input', update); el.addEventListener('change', update); });
    update();
  }
})();
