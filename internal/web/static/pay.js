// The 3-D Secure page with Stripe: Stripe.js confirms the payment in the
// bank's challenge, then the page reloads to show the outcome.
//
// An automatic top-up is charged off-session; when the bank wants the
// customer to authenticate, Stripe fails it with authentication_required and
// the PaymentIntent goes back to requires_payment_method, keeping its card
// only in last_payment_error. Confirming it then without a payment method is
// refused, so the page names the card again: the one in last_payment_error,
// or the one the top-up was charged with (data-pm). A PaymentIntent that
// still holds its card (requires_action, an on-session top-up) is confirmed
// as it is.
(function () {
  'use strict';
  var go = document.getElementById('pay-go');
  var msg = document.getElementById('pay-msg');
  if (!go || typeof window.Stripe !== 'function') return;

  // confirmData is the second argument of confirmCardPayment for the
  // PaymentIntent pi (undefined when it needs none).
  function confirmData(pi, fallback) {
    if (!pi || pi.status !== 'requires_payment_method') return undefined;
    var last = pi.last_payment_error && pi.last_payment_error.payment_method;
    var pm = (last && last.id) || (typeof last === 'string' && last) || fallback;
    return pm ? { payment_method: pm } : undefined;
  }

  go.addEventListener('click', function () {
    go.disabled = true;
    var stripe = window.Stripe(go.getAttribute('data-key'));
    var secret = go.getAttribute('data-secret');
    var fallback = go.getAttribute('data-pm') || '';
    stripe.retrievePaymentIntent(secret).then(function (r) {
      return stripe.confirmCardPayment(secret, confirmData(r && r.paymentIntent, fallback));
    }).then(function (r) {
      msg.textContent = r.error ? r.error.message : 'Payment confirmed.';
      setTimeout(function () { location.reload(); }, 1500);
    }).catch(function (e) {
      msg.textContent = 'Stripe could not be reached: ' + (e && e.message ? e.message : e) + '. Try again.';
      go.disabled = false;
    });
  });
})();
