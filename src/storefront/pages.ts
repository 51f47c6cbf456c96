import type { OrderView } from '../orders/dto/order.view';
import { formatMoney, MAX_QUANTITY, Product, PRODUCTS, SHOP_CURRENCY } from './catalog';
import { groupCardNumber, TEST_CARDS } from './test-cards';

/** What every page needs besides its body. */
export interface PageContext {
  /** This response's CSP nonce: the only inline script that runs. */
  nonce: string;
  /** false: the PSP is real Stripe, where card numbers go through Stripe.js only. */
  cardFormAvailable: boolean;
}

/** Statuses in which the customer can still pay (the order is not being paid, paid or closed). */
export const PAYABLE_STATUSES: readonly string[] = ['pending_payment', 'requires_action', 'payment_failed'];

/** One sentence per status, for the customer. */
const STATUS_NOTES: Record<string, string> = {
  pending_payment: 'Waiting for your payment.',
  requires_action: 'Your bank asks you to confirm the payment (3-D Secure).',
  processing: 'Your payment is being processed.',
  authorized: 'Payment authorized: the amount is held and will be taken when your order ships.',
  payment_failed: 'The last payment attempt failed. You can try again.',
  paid: 'Payment received. Thank you!',
  partially_refunded: 'Part of your payment was refunded.',
  refunded: 'Your payment was refunded.',
  disputed: 'The payment is disputed with your bank.',
  dispute_lost: 'The payment dispute was decided for the cardholder.',
  canceled: 'This order was canceled.',
  expired: 'This order expired before it was paid.',
  needs_review: 'We are looking into a payment on this order.',
};

/** Badge colour group per status; the CSS below gives each a colour. */
const STATUS_TONES: Record<string, string> = {
  pending_payment: 'waiting',
  requires_action: 'waiting',
  processing: 'waiting',
  authorized: 'good',
  paid: 'good',
  payment_failed: 'bad',
  canceled: 'muted',
  expired: 'muted',
  partially_refunded: 'info',
  refunded: 'info',
  disputed: 'alert',
  dispute_lost: 'bad',
  needs_review: 'alert',
};

/** Escapes text for HTML element content and double-quoted attributes. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const STYLE = `
:root { --ink:#1f2328; --muted:#656d76; --line:#d8dee4; --bg:#f6f8fa; --card:#fff; --accent:#4f46e5; --accent-ink:#fff; }
* { box-sizing: border-box; }
body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--ink); background:var(--bg); line-height:1.5; }
header.top { background:var(--card); border-bottom:1px solid var(--line); }
header.top .bar, main { max-width: 960px; margin: 0 auto; padding: 0 20px; }
header.top .bar { display:flex; align-items:center; justify-content:space-between; height:60px; }
.brand { font-weight:700; font-size:1.15rem; color:var(--ink); text-decoration:none; }
.brand span { color:var(--accent); }
.pill { font-size:.75rem; padding:2px 10px; border-radius:999px; background:#fff4d6; color:#7a5b00; border:1px solid #f0d58a; }
main { padding-top:28px; padding-bottom:48px; }
h1 { font-size:1.6rem; margin:0 0 4px; }
.sub { color:var(--muted); margin:0 0 24px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(200px, 1fr)); gap:18px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; overflow:hidden; display:flex; flex-direction:column; }
.pic { height:120px; display:flex; align-items:center; justify-content:center; }
.mark { width:64px; height:64px; border-radius:16px; background:rgba(255,255,255,.75); color:var(--accent); display:flex; align-items:center; justify-content:center; font-size:30px; font-weight:800; box-shadow:0 1px 2px rgba(16,24,40,.08); }
.mark.small { width:52px; height:52px; font-size:24px; border-radius:12px; flex:none; }
.panel h2 { margin-top:0; font-size:1.15rem; }
.card .body { padding:14px 16px 16px; display:flex; flex-direction:column; gap:6px; flex:1; }
.card h2 { font-size:1.05rem; margin:0; }
.card p { margin:0; color:var(--muted); font-size:.9rem; flex:1; }
.price { font-weight:700; font-size:1.05rem; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:22px 24px; margin-bottom:18px; }
.narrow { max-width:560px; margin-left:auto; margin-right:auto; }
.btn { display:inline-block; border:1px solid transparent; border-radius:8px; padding:10px 16px; font:inherit; font-weight:600; cursor:pointer; text-decoration:none; text-align:center; }
.btn-primary { background:var(--accent); color:var(--accent-ink); }
.btn-primary:hover { background:#4338ca; }
.btn-secondary { background:var(--card); color:var(--ink); border-color:var(--line); }
.btn-secondary:hover { background:#eef1f4; }
.btn-danger { background:var(--card); color:#b42318; border-color:#f1b5ae; }
.actions { display:flex; gap:10px; flex-wrap:wrap; margin-top:16px; }
label { display:block; font-weight:600; margin:14px 0 6px; }
input[type=text], input[type=email], input[type=number] { width:100%; padding:10px 12px; border:1px solid var(--line); border-radius:8px; font:inherit; background:#fff; }
input:focus { outline:2px solid #c7d2fe; border-color:var(--accent); }
.notice { border-radius:10px; padding:12px 16px; margin-bottom:18px; border:1px solid; }
.notice.info { background:#eef4ff; border-color:#c7d7fe; color:#1e3a8a; }
.notice.warn { background:#fff8e6; border-color:#f0d58a; color:#7a5b00; }
.notice.error { background:#fef3f2; border-color:#f1b5ae; color:#912018; }
.badge { display:inline-block; padding:3px 12px; border-radius:999px; font-weight:600; font-size:.9rem; border:1px solid; }
.badge.waiting { background:#fff8e6; color:#7a5b00; border-color:#f0d58a; }
.badge.good { background:#ecfdf3; color:#05603a; border-color:#a6e9c3; }
.badge.bad { background:#fef3f2; color:#b42318; border-color:#f1b5ae; }
.badge.muted { background:#f2f4f7; color:#475467; border-color:#d0d5dd; }
.badge.info { background:#f4f3ff; color:#5925dc; border-color:#d9d6fe; }
.badge.alert { background:#fff6ed; color:#c4320a; border-color:#fddcab; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:8px 6px; border-bottom:1px solid var(--line); font-size:.93rem; vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; }
.muted { color:var(--muted); }
.small { font-size:.85rem; }
.status-line { display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:.88em; background:#eef1f4; padding:1px 5px; border-radius:4px; }
footer { max-width:960px; margin:0 auto; padding:0 20px 32px; color:var(--muted); font-size:.85rem; }
[hidden] { display:none !important; }
`;

function layout(ctx: PageContext, title: string, body: string, options: { script?: string; bodyAttributes?: string } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Settle demo shop</title>
<style>${STYLE}</style>
</head>
<body${options.bodyAttributes ? ` ${options.bodyAttributes}` : ''}>
<header class="top"><div class="bar"><a class="brand" href="/">Settle <span>demo shop</span></a><span class="pill">Test mode: no real money</span></div></header>
<main>
${body}
</main>
<footer>A demo storefront for Settle: orders go through its API, payments through the PSP it is configured with.</footer>
${options.script ? `<script nonce="${ctx.nonce}">${options.script}</script>` : ''}
</body>
</html>`;
}

function notice(kind: 'info' | 'warn' | 'error', text: string): string {
  return `<div class="notice ${kind}" role="status">${esc(text)}</div>`;
}

const cardFormUnavailable =
  'Paying by card on this page works only against the bundled mock PSP: real Stripe takes card numbers through Stripe.js alone. Use the hosted payment page.';

export function homePage(ctx: PageContext, flash?: string): string {
  const cards = PRODUCTS.map(
    (p) => `<article class="card" data-sku="${esc(p.sku)}">
  <div class="pic" style="background:${esc(p.tint)}" aria-hidden="true"><span class="mark">${esc(p.mark)}</span></div>
  <div class="body">
    <h2>${esc(p.name)}</h2>
    <p>${esc(p.description)}</p>
    <div class="price">${esc(formatMoney(p.unitAmount, SHOP_CURRENCY))}</div>
    <a class="btn btn-primary" href="/shop/products/${encodeURIComponent(p.sku)}">Buy</a>
  </div>
</article>`,
  ).join('\n');
  return layout(
    ctx,
    'Shop',
    `${flash ? notice('warn', flash) : ''}
<h1>Settle demo shop</h1>
<p class="sub">Pick something, pay with one of Stripe's test cards, and watch the order's status change live.</p>
<section class="grid">
${cards}
</section>`,
  );
}

export interface CheckoutForm {
  quantity: string;
  email: string;
}

export function productPage(ctx: PageContext, product: Product, form: CheckoutForm, error?: string): string {
  return layout(
    ctx,
    product.name,
    `<div class="narrow">
${error ? notice('error', error) : ''}
<div class="panel">
  <div class="status-line"><span class="mark small" style="background:${esc(product.tint)}" aria-hidden="true">${esc(product.mark)}</span>
  <div><h1>${esc(product.name)}</h1><div class="muted">${esc(product.description)}</div></div></div>
  <p class="price">${esc(formatMoney(product.unitAmount, SHOP_CURRENCY))} each</p>
  <form method="post" action="/shop/checkout">
    <input type="hidden" name="sku" value="${esc(product.sku)}">
    <label for="quantity">Quantity</label>
    <input id="quantity" name="quantity" type="number" min="1" max="${MAX_QUANTITY}" step="1" required value="${esc(form.quantity)}">
    <label for="email">Email</label>
    <input id="email" name="email" type="email" required autocomplete="email" placeholder="you@example.com" value="${esc(form.email)}">
    <div class="actions">
      <button class="btn btn-primary" type="submit" name="method" value="hosted">Pay on hosted page</button>
      ${ctx.cardFormAvailable ? '<button class="btn btn-secondary" type="submit" name="method" value="card">Pay by card here</button>' : ''}
    </div>
  </form>
  ${ctx.cardFormAvailable ? '' : `<p class="muted small">${esc(cardFormUnavailable)}</p>`}
</div>
<a href="/">← Back to the shop</a>
</div>`,
  );
}

/** Fixed texts for the pay page's ?result=, so nothing from the URL is echoed. */
export const PAY_RESULTS: Record<string, { kind: 'warn' | 'error'; text: string }> = {
  declined: { kind: 'error', text: 'Your card was declined. Try another card.' },
  auth_failed: { kind: 'error', text: '3-D Secure authentication failed, so the payment did not go through. Try again or use another card.' },
  unknown_card: { kind: 'warn', text: 'That is not one of the test card numbers below.' },
};

export function payPage(ctx: PageContext, order: OrderView, result?: string): string {
  const shown = result ? PAY_RESULTS[result] : undefined;
  const testCards = TEST_CARDS.map((c) => `<tr><td><code>${esc(groupCardNumber(c.number))}</code></td><td>${esc(c.outcome)}</td></tr>`).join('');
  const form = ctx.cardFormAvailable
    ? `<form method="post" action="/shop/orders/${esc(order.id)}/pay">
    <label for="cardNumber">Card number</label>
    <input id="cardNumber" name="cardNumber" type="text" inputmode="numeric" autocomplete="off" placeholder="4242 4242 4242 4242" required>
    <div class="actions"><button class="btn btn-primary" type="submit">Pay</button></div>
  </form>
  <p class="muted small">Any expiry and CVC would do with these test numbers, so the form does not ask for them.</p>
  <table aria-label="Test cards"><tr><th>Test card</th><th>What happens</th></tr>${testCards}</table>`
    : notice('warn', cardFormUnavailable);
  return layout(
    ctx,
    'Pay',
    `<div class="narrow">
${shown ? notice(shown.kind, shown.text) : ''}
<div class="panel">
  <h1>Pay ${esc(formatMoney(order.amount, order.currency))}</h1>
  <p class="muted">Order <code>${esc(order.id)}</code> · ${esc(order.customerEmail)}</p>
  ${form}
</div>
<a href="/shop/orders/${esc(order.id)}">View the order</a>
</div>`,
  );
}

export function authenticatePage(ctx: PageContext, order: OrderView): string {
  return layout(
    ctx,
    '3-D Secure',
    `<div class="narrow">
<div class="panel">
  <h1>3-D Secure test authentication</h1>
  <p>Your bank asks you to confirm a payment of <strong>${esc(formatMoney(order.amount, order.currency))}</strong> to Settle demo shop.</p>
  <form method="post" action="/shop/orders/${esc(order.id)}/authenticate">
    <div class="actions">
      <button class="btn btn-primary" type="submit" name="outcome" value="succeed">Complete authentication</button>
      <button class="btn btn-danger" type="submit" name="outcome" value="fail">Fail authentication</button>
    </div>
  </form>
  <p class="muted small">This is the mock PSP's test authentication step (its <code>/v1/test_helpers/payment_intents/:id/authenticate</code>), called by the shop's server. With real Stripe, Stripe.js shows the bank's own page instead.</p>
</div>
</div>`,
  );
}

function historyRows(order: OrderView): string {
  if (order.history.length === 0) return '<tr class="empty"><td colspan="3" class="muted">No changes yet.</td></tr>';
  return order.history
    .map((h) => `<tr><td class="muted">${esc(formatTime(h.at))}</td><td>${esc(label(h.from))} → <strong>${esc(label(h.to))}</strong></td><td class="muted">${esc(h.reason)}</td></tr>`)
    .join('');
}

/** ISO time as "2026-11-23 10:00:05 UTC"; the page's script formats live rows the same way. */
function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

function label(status: string): string {
  return status.replace(/_/g, ' ');
}

export function orderPage(ctx: PageContext, order: OrderView, options: { fromCheckout: boolean }): string {
  const tone = STATUS_TONES[order.status] ?? 'muted';
  const items = order.items
    .map(
      (i) =>
        `<tr><td>${esc(i.name)} <span class="muted small">${esc(i.sku)}</span></td><td class="num">${esc(i.quantity)}</td><td class="num">${esc(formatMoney(i.unitAmount, order.currency))}</td><td class="num">${esc(formatMoney(i.unitAmount * i.quantity, order.currency))}</td></tr>`,
    )
    .join('');
  // A Checkout order is paid on the PSP's page; only a PaymentIntent order can be paid here.
  const canPayHere = ctx.cardFormAvailable && !!order.payment?.id && !order.payment.checkoutSessionId;
  const payable = canPayHere && PAYABLE_STATUSES.includes(order.status);
  return layout(
    ctx,
    'Your order',
    `${options.fromCheckout ? notice('info', 'Thanks! You are back from the payment page; the status below follows the payment as the PSP reports it.') : ''}
<div class="panel">
  <h1>Your order</h1>
  <p class="muted">Order <code>${esc(order.id)}</code> · ${esc(order.customerEmail)}</p>
  <div class="status-line">
    <span id="status" class="badge ${tone}" data-status="${esc(order.status)}" data-testid="status">${esc(label(order.status))}</span>
    <span id="status-note">${esc(STATUS_NOTES[order.status] ?? '')}</span>
  </div>
  <p class="muted small" id="live" aria-live="polite">Live updates: connecting…</p>
  <div class="actions" id="pay-actions"${payable ? '' : ' hidden'}>
    <a class="btn btn-primary" href="/shop/orders/${esc(order.id)}/pay">Pay by card</a>
  </div>
</div>
<div class="panel">
  <h2>Items</h2>
  <table aria-label="Items">
    <tr><th>Item</th><th class="num">Qty</th><th class="num">Price</th><th class="num">Total</th></tr>
    ${items}
    <tr><td colspan="3"><strong>Amount</strong></td><td class="num" id="amount"><strong>${esc(formatMoney(order.amount, order.currency))}</strong></td></tr>
  </table>
</div>
<div class="panel">
  <h2>History</h2>
  <table aria-label="History"><thead><tr><th>When</th><th>Change</th><th>Why</th></tr></thead><tbody id="history">${historyRows(order)}</tbody></table>
</div>
<a href="/">← Back to the shop</a>
<script type="application/json" id="status-texts">${jsonForScript({ notes: STATUS_NOTES, tones: STATUS_TONES, payable: PAYABLE_STATUSES, canPayHere })}</script>`,
    { script: ORDER_PAGE_SCRIPT, bodyAttributes: `data-order-id="${esc(order.id)}"` },
  );
}

/** JSON inside a script element: "<" escaped, so no "</script>" can end it early. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/**
 * The order page's only script. Each status message of the order's SSE
 * stream (GET /orders/:id/events) sets the badge at once, then the order is
 * read again (GET /orders/:id) for the full history; text goes in through
 * textContent only. EventSource reconnects by itself with Last-Event-ID, and
 * the server ends the stream for good after a terminal status (204).
 */
const ORDER_PAGE_SCRIPT = `
(function () {
  var id = document.body.getAttribute('data-order-id');
  var texts = JSON.parse(document.getElementById('status-texts').textContent);
  var badge = document.getElementById('status');
  var note = document.getElementById('status-note');
  var live = document.getElementById('live');
  var history = document.getElementById('history');
  var payActions = document.getElementById('pay-actions');
  function label(s) { return String(s).replace(/_/g, ' '); }
  function time(iso) { return iso.slice(0, 10) + ' ' + iso.slice(11, 19) + ' UTC'; }
  function cell(text, cls) { var td = document.createElement('td'); if (cls) td.className = cls; td.textContent = text; return td; }
  function setStatus(status) {
    badge.textContent = label(status);
    badge.setAttribute('data-status', status);
    badge.className = 'badge ' + (texts.tones[status] || 'muted');
    note.textContent = texts.notes[status] || '';
    payActions.hidden = !(texts.canPayHere && texts.payable.indexOf(status) >= 0);
  }
  function setHistory(entries) {
    var rows = document.createDocumentFragment();
    entries.forEach(function (h) {
      var tr = document.createElement('tr');
      tr.appendChild(cell(time(h.at), 'muted'));
      var change = document.createElement('td');
      change.appendChild(document.createTextNode(label(h.from) + ' → '));
      var to = document.createElement('strong'); to.textContent = label(h.to); change.appendChild(to);
      tr.appendChild(change);
      tr.appendChild(cell(h.reason, 'muted'));
      rows.appendChild(tr);
    });
    if (entries.length > 0) { history.textContent = ''; history.appendChild(rows); }
  }
  var latest = 0;
  function refresh() {
    var asked = ++latest;
    fetch('/orders/' + encodeURIComponent(id), { headers: { accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (order) { if (order && asked === latest) { setStatus(order.status); setHistory(order.history); } })
      .catch(function () {});
  }
  if (!window.EventSource) { live.textContent = 'Live updates need a newer browser; reload to see changes.'; return; }
  var source = new EventSource('/orders/' + encodeURIComponent(id) + '/events');
  source.addEventListener('open', function () { live.textContent = 'Live updates: on'; });
  source.addEventListener('status', function (e) {
    var data = JSON.parse(e.data);
    setStatus(data.status);
    refresh();
  });
  source.addEventListener('error', function () {
    live.textContent = source.readyState === EventSource.CLOSED ? 'Live updates: finished' : 'Live updates: reconnecting…';
  });
})();
`;

export function errorPage(ctx: PageContext, title: string, message: string): string {
  return layout(ctx, title, `<div class="narrow"><div class="panel"><h1>${esc(title)}</h1><p>${esc(message)}</p></div><a href="/">← Back to the shop</a></div>`);
}
