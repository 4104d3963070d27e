// The 3-D Secure page with Stripe: Stripe.js confirms the payment in the
// bank's challenge, then the page reloads to show the outcome.
(function () {
  'use strict';
  var go = document.getElementById('pay-go');
  var msg = document.getElementById('pay-msg');
  if (!go || typeof window.Stripe !== 'function') return;
  go.addEventListener('click', function () {
    go.disabled = true;
    window.Stripe(go.getAttribute('data-key')).confirmCardPayment(go.getAttribute('data-secret')).then(function (r) {
      msg.textContent = r.error ? r.error.message : 'Payment confirmed.';
      setTimeout(function () { location.reload(); }, 1500);
    });
  });
})();
