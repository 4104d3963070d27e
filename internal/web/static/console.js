// The console's only script: the Automatic Payments switch opens the
// settings dialog, and the dialog previews the values as they are typed;
// the Budgets form hides the limit while "Unlimited" (which takes none) is
// chosen, and a new webhook endpoint's secret gets a Copy button.
// Every page works without it; it only makes them quicker to use.
(function () {
  'use strict';
  var form = document.getElementById('budget-form');
  var field = document.getElementById('limit-field');
  var input = document.getElementById('limit');
  if (form && field && input) {
    var sync = function () {
      var kind = form.querySelector('input[name="kind"]:checked');
      var none = kind !== null && kind.value === 'unlimited';
      field.hidden = none;
      input.disabled = none;
    };
    form.addEventListener('change', sync);
    sync();
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-copy]'), function (btn) {
    var src = document.getElementById(btn.getAttribute('data-copy'));
    if (!src || !navigator.clipboard) return;
    btn.hidden = false;
    btn.addEventListener('click', function () {
      navigator.clipboard.writeText(src.value).then(function () {
        btn.textContent = 'Copied';
      }, function () {
        src.select();
      });
    });
  });
})();

(function () {
  'use strict';
  var dialog = document.getElementById('auto-dialog');
  if (!dialog || typeof dialog.showModal !== 'function') return;

  var sw = document.getElementById('auto-switch');
  var wasOn = sw !== null && sw.getAttribute('aria-checked') === 'true';
  var form = document.getElementById('auto-form');
  var out = document.getElementById('preview');
  var timer = 0, seq = 0;

  function open(opener) {
    dialog.returnFocus = opener || sw;
    if (!dialog.open) dialog.showModal();
    var bad = dialog.querySelector('[aria-invalid="true"]');
    (bad || document.getElementById('threshold')).focus();
    schedule(0);
  }

  // The off switch (a GET form that opens the dialog without script) and
  // "Change settings" open the dialog in place.
  Array.prototype.forEach.call(document.querySelectorAll('[data-opens="auto-dialog"]'), function (el) {
    el.addEventListener(el.tagName === 'FORM' ? 'submit' : 'click', function (e) {
      e.preventDefault();
      if (sw && !wasOn) sw.setAttribute('aria-checked', 'true');
      open(el.tagName === 'FORM' ? sw : el);
    });
  });
  Array.prototype.forEach.call(dialog.querySelectorAll('[data-close]'), function (el) {
    el.addEventListener('click', function (e) { e.preventDefault(); dialog.close(); });
  });
  // Closed without saving: the switch goes back to what is saved.
  dialog.addEventListener('close', function () {
    if (sw && !wasOn) sw.setAttribute('aria-checked', 'false');
    if (dialog.returnFocus) dialog.returnFocus.focus();
  });

  // A field edited after a refusal loses its error until the next save.
  form.addEventListener('input', function (e) {
    var f = e.target;
    if (f.getAttribute('aria-invalid') === 'true') {
      f.removeAttribute('aria-invalid');
      var msg = document.getElementById(f.id + '-error');
      if (msg) msg.textContent = '';
    }
    schedule(300);
  });
  form.addEventListener('change', function () { schedule(0); });

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(fetchPreview, ms);
  }

  function fetchPreview() {
    var q = new URLSearchParams();
    ['threshold', 'target', 'monthly_limit', 'payment_method'].forEach(function (n) {
      if (form.elements[n]) q.set(n, form.elements[n].value);
    });
    var mine = ++seq;
    out.setAttribute('aria-busy', 'true');
    fetch(form.getAttribute('data-preview') + '?' + q.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (p) { if (mine === seq) show(p); })
      .catch(function () { if (mine === seq) show({ lines: [], error: 'The preview is not available right now.' }); });
  }

  function show(p) {
    out.textContent = '';
    (p.lines || []).forEach(function (line) {
      var el = document.createElement('p');
      el.textContent = line;
      out.appendChild(el);
    });
    if (p.error) {
      var e = document.createElement('p');
      e.className = 'preview-error';
      e.textContent = p.error;
      out.appendChild(e);
    }
    out.setAttribute('data-state', p.valid ? 'valid' : 'invalid');
    out.removeAttribute('aria-busy');
  }

  // The server left the dialog open (a refusal, or ?settings=open): make it
  // modal, with the focus on the field at fault.
  if (dialog.hasAttribute('open')) {
    dialog.removeAttribute('open');
    if (sw && !wasOn) sw.setAttribute('aria-checked', 'true');
    open(sw);
  }
})();
