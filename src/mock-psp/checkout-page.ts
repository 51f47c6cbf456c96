import type http from 'node:http';
import qs from 'qs';
import type Stripe from 'stripe';
import { AttemptOutcome, CheckoutDesk } from './checkout-sessions';
import { formatAmount } from './currencies';

/** Where the hosted page lives; the session's `url` is `<mock>/c/pay/<session id>`, as Stripe's is under /c/pay/. */
export const CHECKOUT_PAGE_PREFIX = '/c/pay/';

/** What the page says for each error code it is sent back with (codes, not text, travel in the URL). */
const ERROR_MESSAGES: Record<string, string> = {
  card_declined: 'Your card was declined. Try another card.',
  incorrect_number: 'Your card number is incorrect. Check it, or use a test card such as 4242 4242 4242 4242.',
  parameter_missing: 'Enter a card number.',
  payment_intent_authentication_failure: 'We are unable to authenticate your payment method. Choose another payment method and try again.',
  no_authentication: 'There is no payment waiting for authentication. Enter your card again.',
};

const TEST_CARDS: Array<[string, string]> = [
  ['4242 4242 4242 4242', 'succeeds'],
  ['4000 0000 0000 0002', 'is declined'],
  ['4000 0027 6000 3184', 'asks for 3-D Secure'],
];

/**
 * The hosted payment page of Checkout Sessions: plain server-rendered HTML
 * and forms, no API key (the customer's browser has none), no external
 * assets. Each action redirects (303) so a reload never pays twice.
 */
export class CheckoutPage {
  constructor(private readonly desk: CheckoutDesk) {}

  /** Answers the page's requests and returns true; false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): boolean {
    const url = new URL(req.url ?? '/', 'http://mock');
    if (!url.pathname.startsWith(CHECKOUT_PAGE_PREFIX)) return false;
    const [id, step = '', ...rest] = url.pathname.slice(CHECKOUT_PAGE_PREFIX.length).split('/');
    const stored = this.desk.sessions.get(decodeURIComponent(id));
    if (!stored || rest.length > 0) {
      send(res, 404, layout('Not found', `<h1>Checkout not found</h1><p class="muted">There is no checkout session at this address.</p>`));
      return true;
    }
    const session = stored.session;
    const form = req.method === 'POST' ? (qs.parse(body) as Record<string, unknown>) : {};
    const field = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
    const base = `${CHECKOUT_PAGE_PREFIX}${session.id}`;

    if (req.method === 'GET' && step === '') {
      send(res, 200, session.status === 'open' ? this.paymentPage(session, url.searchParams.get('error')) : closedPage(session));
    } else if (req.method === 'POST' && step === '') {
      this.follow(res, session, this.desk.payWithCard(session.id, field('card_number')));
    } else if (req.method === 'GET' && step === 'authenticate') {
      send(res, 200, session.status === 'open' ? authenticationPage(session) : closedPage(session));
    } else if (req.method === 'POST' && step === 'authenticate') {
      this.follow(res, session, this.desk.authenticate(session.id, field('outcome') === 'complete' ? 'succeed' : 'fail'));
    } else if (req.method === 'GET' && step === 'bank') {
      send(res, 200, session.status === 'open' ? bankPage(session) : closedPage(session));
    } else if (req.method === 'POST' && step === 'bank') {
      this.follow(res, session, this.desk.payWithBankRedirect(session.id, field('outcome') === 'authorize' ? 'authorize' : 'fail'));
    } else if (req.method === 'GET' && step === 'done') {
      send(res, 200, closedPage(session));
    } else {
      send(res, 404, layout('Not found', `<h1>Not found</h1><p><a href="${escape(base)}">Back to the payment page</a></p>`));
    }
    return true;
  }

  private follow(res: http.ServerResponse, session: Stripe.Checkout.Session, outcome: AttemptOutcome): void {
    const base = `${CHECKOUT_PAGE_PREFIX}${session.id}`;
    switch (outcome.kind) {
      case 'complete':
        return redirect(res, session.success_url ? session.success_url.replaceAll('{CHECKOUT_SESSION_ID}', session.id) : `${base}/done`);
      case 'requires_action':
        return redirect(res, `${base}/authenticate`);
      case 'failed':
        return redirect(res, `${base}?error=${encodeURIComponent(outcome.code)}`);
      case 'not_open':
        return redirect(res, base);
    }
  }

  private paymentPage(session: Stripe.Checkout.Session, errorCode: string | null): string {
    const lineItems = this.desk.lineItems(session.id);
    const currency = session.currency as string;
    const rows = lineItems
      .map(
        (item) => `<tr><td>${escape(item.description ?? 'Item')}${item.quantity && item.quantity > 1 ? ` <span class="muted">× ${item.quantity}</span>` : ''}</td><td class="num">${money(item.amount_total, currency)}</td></tr>`,
      )
      .join('');
    const error = errorCode ? `<div class="error" role="alert">${escape(ERROR_MESSAGES[errorCode] ?? 'The payment did not go through. Try again.')}</div>` : '';
    const types = session.payment_method_types;
    const card = types.includes('card')
      ? `<form method="post" action="${CHECKOUT_PAGE_PREFIX}${session.id}" class="pay">
  <label for="card-number">Card number</label>
  <input id="card-number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242" required autofocus>
  <button type="submit" class="primary">Pay</button>
</form>
<details class="hint"><summary>Test cards</summary><ul>${TEST_CARDS.map(([n, what]) => `<li><code>${n}</code> ${what}</li>`).join('')}</ul></details>`
      : '';
    const bank = types.includes('ideal')
      ? `${card ? '<div class="or"><span>or</span></div>' : ''}<form method="get" action="${CHECKOUT_PAGE_PREFIX}${session.id}/bank"><button type="submit" class="secondary">Pay with bank redirect</button></form>`
      : '';
    const none = !card && !bank ? `<p class="muted">This session offers ${escape(types.join(', '))}, which this test page cannot collect.</p>` : '';
    return layout(
      'Checkout',
      `${backLink(session)}
<h1>Pay ${money(session.amount_total as number, currency)}</h1>
<table class="items">${rows}<tr class="total"><td>Total</td><td class="num">${money(session.amount_total as number, currency)}</td></tr></table>
${error}${card}${bank}${none}`,
    );
  }
}

function authenticationPage(session: Stripe.Checkout.Session): string {
  const action = `${CHECKOUT_PAGE_PREFIX}${session.id}/authenticate`;
  return layout(
    '3-D Secure',
    `<h1>Authenticate your payment</h1>
<p class="muted">3-D Secure test page. Your bank asks you to confirm a payment of <strong>${money(session.amount_total as number, session.currency as string)}</strong>.</p>
<form method="post" action="${action}"><input type="hidden" name="outcome" value="complete"><button type="submit" class="primary">Complete authentication</button></form>
<form method="post" action="${action}"><input type="hidden" name="outcome" value="fail"><button type="submit" class="secondary">Fail authentication</button></form>`,
  );
}

function bankPage(session: Stripe.Checkout.Session): string {
  const action = `${CHECKOUT_PAGE_PREFIX}${session.id}/bank`;
  return layout(
    'Bank redirect',
    `<a class="back" href="${CHECKOUT_PAGE_PREFIX}${session.id}">← Back to card payment</a>
<h1>Test bank payment</h1>
<p class="muted">This page stands in for your bank. Authorize or fail the test payment of <strong>${money(session.amount_total as number, session.currency as string)}</strong>; the outcome arrives a moment later, as bank payments do.</p>
<form method="post" action="${action}"><input type="hidden" name="outcome" value="authorize"><button type="submit" class="primary">Authorize test payment</button></form>
<form method="post" action="${action}"><input type="hidden" name="outcome" value="fail"><button type="submit" class="secondary">Fail test payment</button></form>`,
  );
}

function closedPage(session: Stripe.Checkout.Session): string {
  if (session.status === 'expired') {
    return layout('Expired', `<h1>This checkout has expired</h1><p class="muted">Start again from the shop.</p>${backLink(session)}`);
  }
  const note = session.payment_status === 'paid' ? 'Your payment is complete.' : 'Your payment is being processed.';
  const next = session.success_url ? `<p><a href="${escape(session.success_url.replaceAll('{CHECKOUT_SESSION_ID}', session.id))}">Return to the shop</a></p>` : '';
  return layout('Complete', `<h1>Thank you</h1><p class="muted">${note}</p>${next}`);
}

function backLink(session: Stripe.Checkout.Session): string {
  return session.cancel_url ? `<a class="back" href="${escape(session.cancel_url)}">← Back</a>` : '';
}

function money(amount: number, currency: string): string {
  return `${formatAmount(amount, currency)} ${currency.toUpperCase()}`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function redirect(res: http.ServerResponse, location: string): void {
  res.writeHead(303, { Location: location, 'Cache-Control': 'no-store' });
  res.end();
}

function send(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    // Nothing but this page's own inline style and script; forms may still post to the page and redirect anywhere.
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  });
  res.end(html);
}

function layout(title: string, content: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · Settle mock checkout</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center; padding: 24px;
         font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1a1f36; background: #f3f4f8; }
  main { width: 100%; max-width: 420px; background: #fff; border-radius: 14px; padding: 28px 28px 24px; box-shadow: 0 1px 3px rgba(16,24,40,.08), 0 12px 32px rgba(16,24,40,.08); }
  .badge { display: inline-block; font-size: 12px; font-weight: 600; letter-spacing: .04em; color: #8a4b00; background: #ffefd1; border-radius: 6px; padding: 2px 8px; }
  .brand { display: flex; justify-content: space-between; align-items: center; margin-bottom: 16px; color: #56607a; font-size: 14px; }
  h1 { font-size: 22px; margin: 4px 0 16px; }
  .muted { color: #56607a; }
  .back { display: inline-block; color: #4f46e5; text-decoration: none; font-size: 14px; margin-bottom: 8px; }
  .back:hover { text-decoration: underline; }
  table.items { width: 100%; border-collapse: collapse; margin-bottom: 20px; }
  table.items td { padding: 8px 0; border-bottom: 1px solid #eceef3; }
  table.items tr.total td { font-weight: 600; border-bottom: none; }
  td.num { text-align: right; white-space: nowrap; }
  label { display: block; font-size: 14px; font-weight: 500; margin-bottom: 6px; }
  input { width: 100%; font: inherit; padding: 10px 12px; border: 1px solid #cfd4de; border-radius: 8px; margin-bottom: 14px; }
  input:focus { outline: 2px solid #a5b4fc; border-color: #4f46e5; }
  form { margin: 0 0 10px; }
  button { width: 100%; font: inherit; font-weight: 600; padding: 11px 14px; border-radius: 8px; cursor: pointer; }
  button.primary { background: #4f46e5; color: #fff; border: 1px solid #4f46e5; }
  button.primary:hover { background: #4338ca; }
  button.secondary { background: #fff; color: #1a1f36; border: 1px solid #cfd4de; }
  button.secondary:hover { background: #f6f7fb; }
  button:disabled { opacity: .6; cursor: default; }
  .error { background: #fdecec; color: #a4161a; border-radius: 8px; padding: 10px 12px; margin-bottom: 14px; font-size: 14px; }
  .or { display: flex; align-items: center; gap: 10px; color: #8a93a8; font-size: 13px; margin: 14px 0; }
  .or::before, .or::after { content: ""; flex: 1; border-top: 1px solid #eceef3; }
  .hint { font-size: 13px; color: #56607a; margin: 4px 0 8px; }
  .hint ul { margin: 6px 0 0; padding-left: 18px; }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
</style>
</head>
<body>
<main>
<div class="brand"><span>Settle mock checkout</span><span class="badge">TEST MODE</span></div>
${content}
</main>
<script>
  // One submission per click: the button shows that the payment is on its way.
  for (const form of document.querySelectorAll('form')) {
    form.addEventListener('submit', () => { for (const b of form.querySelectorAll('button')) b.disabled = true; });
  }
  // A page restored by the Back button must be usable again.
  addEventListener('pageshow', () => { for (const b of document.querySelectorAll('button')) b.disabled = false; });
</script>
</body>
</html>`;
}
