import { Body, Controller, Get, Logger, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { isEmail } from 'class-validator';
import type { Request, Response } from 'express';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { CreateOrderDto } from '../orders/dto/create-order.dto';
import { OrderView } from '../orders/dto/order.view';
import { OrdersService } from '../orders/orders.service';
import { findProduct, MAX_QUANTITY, SHOP_CURRENCY } from './catalog';
import { authenticatePage, errorPage, homePage, orderPage, PageContext, PAY_RESULTS, PAYABLE_STATUSES, payPage, productPage } from './pages';
import { CardOutcome, StorefrontPsp } from './storefront-psp';
import { testPaymentMethodFor } from './test-cards';

type Form = Record<string, unknown> | undefined;

/**
 * The demo shop (DEMO_STOREFRONT): server-rendered pages at / and under
 * /shop, beside the API's routes and never under them. Orders are made with
 * OrdersService as POST /orders makes them; what they become comes from the
 * PSP's webhooks like any other order's, and the order page follows it live
 * through GET /orders/:id/events.
 */
@ApiExcludeController()
@Controller()
export class StorefrontController {
  private readonly logger = new Logger(StorefrontController.name);

  constructor(private readonly orders: OrdersService, private readonly psp: StorefrontPsp) {}

  @Get()
  home(@Query('notice') notice: string | undefined, @Res() res: Response): void {
    const flash = notice === 'canceled' ? 'Payment canceled: nothing was charged. Your order stays unpaid and expires on its own.' : undefined;
    this.send(res, 200, (ctx) => homePage(ctx, flash));
  }

  @Get('shop/products/:sku')
  product(@Param('sku') sku: string, @Res() res: Response): void {
    const product = findProduct(sku);
    if (!product) return this.send(res, 404, (ctx) => errorPage(ctx, 'Not found', 'There is no such product.'));
    this.send(res, 200, (ctx) => productPage(ctx, product, { quantity: '1', email: '' }));
  }

  /**
   * Creates the order from the product form: "hosted" asks for a Checkout
   * Session and sends the browser to its page; "card" makes a PaymentIntent
   * order and shows this shop's card form.
   */
  @Post('shop/checkout')
  async checkout(@Body() body: Form, @Req() req: Request, @Res() res: Response): Promise<void> {
    const sku = field(body, 'sku');
    const product = findProduct(sku);
    if (!product) return this.send(res, 404, (ctx) => errorPage(ctx, 'Not found', 'There is no such product.'));
    const form = { quantity: field(body, 'quantity'), email: field(body, 'email').trim() };
    const method = field(body, 'method');
    const quantity = /^\d{1,3}$/.test(form.quantity) ? Number(form.quantity) : NaN;
    const problem =
      !(quantity >= 1 && quantity <= MAX_QUANTITY) ? `Quantity must be a whole number from 1 to ${MAX_QUANTITY}.`
      : !(isEmail(form.email) && form.email.length <= 254) ? 'Please enter a valid email address.'
      : method !== 'hosted' && method !== 'card' ? 'Choose how to pay.'
      : method === 'card' && !this.psp.cardFormAvailable ? 'Paying by card on this page needs the bundled mock PSP; use the hosted page.'
      : undefined;
    if (problem) return this.send(res, 400, (ctx) => productPage(ctx, product, form, problem));

    const base = `${req.protocol}://${req.get('host')}`;
    const dto = Object.assign(new CreateOrderDto(), {
      currency: SHOP_CURRENCY,
      items: [{ sku: product.sku, name: product.name, unitAmount: product.unitAmount, quantity }],
      customerEmail: form.email,
      ...(method === 'hosted'
        ? {
            checkout: {
              // The order id is not known before the order is made, so the PSP returns to a route that finds it from the session.
              successUrl: `${base}/shop/return?session={CHECKOUT_SESSION_ID}`,
              cancelUrl: `${base}/?notice=canceled`,
            },
          }
        : {}),
    });
    let order: OrderView;
    try {
      order = (await this.orders.create(dto)).order;
    } catch (err) {
      return this.fail(res, err, 'creating your order');
    }
    if (method === 'card') return res.redirect(303, `/shop/orders/${order.id}/pay`);
    const checkoutUrl = order.payment?.checkoutUrl;
    if (!checkoutUrl) {
      return this.send(res, 501, (ctx) => errorPage(ctx, 'Hosted checkout unavailable', 'This server did not open a hosted payment page for the order.'));
    }
    res.redirect(303, checkoutUrl);
  }

  /** Where the hosted payment page sends the customer back: the session names its order, whose page follows. */
  @Get('shop/return')
  async returnFromCheckout(@Query('session') session: string | undefined, @Res() res: Response): Promise<void> {
    if (!session || !/^cs_\w{1,200}$/.test(session)) return this.send(res, 400, (ctx) => errorPage(ctx, 'Unknown payment session', 'The link has no valid session.'));
    let orderId: string | undefined;
    try {
      orderId = await this.psp.orderIdOfCheckoutSession(session);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.statusCode === 404) orderId = undefined;
      else return this.fail(res, err, 'looking up your payment session');
    }
    if (!orderId) return this.send(res, 404, (ctx) => errorPage(ctx, 'Unknown payment session', 'No order was found for this payment session.'));
    res.redirect(303, `/shop/orders/${encodeURIComponent(orderId)}?session=${encodeURIComponent(session)}`);
  }

  @Get('shop/orders/:id')
  async order(@Param('id') id: string, @Query('session') session: string | undefined, @Res() res: Response): Promise<void> {
    const order = await this.find(id, res);
    if (order) this.send(res, 200, (ctx) => orderPage(ctx, order, { fromCheckout: session !== undefined }));
  }

  @Get('shop/orders/:id/pay')
  async payForm(@Param('id') id: string, @Query('result') result: string | undefined, @Res() res: Response): Promise<void> {
    const order = await this.find(id, res);
    if (!order) return;
    if (!this.canPayHere(order)) return res.redirect(303, `/shop/orders/${order.id}`);
    this.send(res, 200, (ctx) => payPage(ctx, order, result !== undefined && result in PAY_RESULTS ? result : undefined));
  }

  /** The card form: the test card number picks a test PaymentMethod, with which this server confirms the PaymentIntent. */
  @Post('shop/orders/:id/pay')
  async pay(@Param('id') id: string, @Body() body: Form, @Res() res: Response): Promise<void> {
    const order = await this.find(id, res);
    if (!order) return;
    const intentId = this.cardIntentOf(order);
    if (!intentId || !PAYABLE_STATUSES.includes(order.status)) return res.redirect(303, `/shop/orders/${order.id}`);
    const paymentMethod = testPaymentMethodFor(field(body, 'cardNumber'));
    if (!paymentMethod) return res.redirect(303, `/shop/orders/${order.id}/pay?result=unknown_card`);
    let outcome: CardOutcome;
    try {
      outcome = await this.psp.confirmWithTestCard(intentId, paymentMethod);
    } catch (err) {
      return this.afterPspError(res, order, err, 'confirming your payment');
    }
    this.redirectFor(res, order, outcome, 'declined');
  }

  @Get('shop/orders/:id/authenticate')
  async authenticateForm(@Param('id') id: string, @Res() res: Response): Promise<void> {
    const order = await this.find(id, res);
    if (!order) return;
    const intentId = this.cardIntentOf(order);
    if (!intentId) return res.redirect(303, `/shop/orders/${order.id}`);
    let intent: Stripe.PaymentIntent;
    try {
      intent = await this.psp.retrievePaymentIntent(intentId);
    } catch (err) {
      return this.fail(res, err, 'reading your payment');
    }
    if (intent.status !== 'requires_action') return res.redirect(303, `/shop/orders/${order.id}`);
    this.send(res, 200, (ctx) => authenticatePage(ctx, order));
  }

  @Post('shop/orders/:id/authenticate')
  async authenticate(@Param('id') id: string, @Body() body: Form, @Res() res: Response): Promise<void> {
    const order = await this.find(id, res);
    if (!order) return;
    const intentId = this.cardIntentOf(order);
    if (!intentId) return res.redirect(303, `/shop/orders/${order.id}`);
    const outcome = field(body, 'outcome') === 'fail' ? 'fail' : 'succeed';
    let result: CardOutcome;
    try {
      result = await this.psp.completeAuthentication(intentId, outcome);
    } catch (err) {
      return this.afterPspError(res, order, err, 'authenticating your payment');
    }
    this.redirectFor(res, order, result, 'auth_failed');
  }

  private canPayHere(order: OrderView): boolean {
    return this.cardIntentOf(order) !== undefined && PAYABLE_STATUSES.includes(order.status);
  }

  /** The PaymentIntent this shop's card form confirms: a PaymentIntent order's (a Checkout order is paid on the hosted page), when the PSP allows the form. */
  private cardIntentOf(order: OrderView): string | undefined {
    if (!this.psp.cardFormAvailable || !order.payment || order.payment.checkoutSessionId || !order.payment.id) return undefined;
    return order.payment.id;
  }

  private redirectFor(res: Response, order: OrderView, outcome: CardOutcome, failure: keyof typeof PAY_RESULTS): void {
    if (outcome.kind === 'requires_action') return res.redirect(303, `/shop/orders/${order.id}/authenticate`);
    if (outcome.kind === 'declined') return res.redirect(303, `/shop/orders/${order.id}/pay?result=${failure}`);
    res.redirect(303, `/shop/orders/${order.id}`);
  }

  /** A PaymentIntent the PSP will not confirm or authenticate any more (paid meanwhile, canceled, expired): its order page says why. */
  private afterPspError(res: Response, order: OrderView, err: unknown, doing: string): void {
    if (err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'payment_intent_unexpected_state') {
      return res.redirect(303, `/shop/orders/${order.id}`);
    }
    this.fail(res, err, doing);
  }

  /** The order, or a 404 page already sent. */
  private async find(id: string, res: Response): Promise<OrderView | undefined> {
    try {
      return await this.orders.get(id);
    } catch (err) {
      this.fail(res, err, 'loading your order');
      return undefined;
    }
  }

  /** Failures as pages, not the API's JSON: a person is reading. Unknown errors are logged and not shown. */
  private fail(res: Response, err: unknown, doing: string): void {
    if (err instanceof DomainError) {
      if (err.code === ErrorCode.NotFound) return this.send(res, 404, (ctx) => errorPage(ctx, 'Not found', 'There is no such order.'));
      // The domain's validation messages are written for the person who can fix the request.
      if (err.code === ErrorCode.Validation) return this.send(res, 400, (ctx) => errorPage(ctx, 'That did not work', err.message));
      if (err.code === ErrorCode.PspUnavailable || err.code === ErrorCode.Conflict) {
        return this.send(res, 503, (ctx) => errorPage(ctx, 'Please try again', `The payment provider did not answer while ${doing}. Please try again in a moment.`));
      }
    }
    this.logger.error({ msg: `storefront failed while ${doing}`, error: (err as Error).message });
    this.send(res, 502, (ctx) => errorPage(ctx, 'Something went wrong', `Something went wrong while ${doing}. Please try again.`));
  }

  /**
   * Sends a page with its own CSP in place of helmet's: the one inline script
   * runs by this response's nonce, and forms may lead to the hosted payment
   * page (a form's redirect is checked against form-action too).
   */
  private send(res: Response, status: number, render: (ctx: PageContext) => string): void {
    const nonce = randomBytes(16).toString('base64');
    res.setHeader(
      'Content-Security-Policy',
      [
        "default-src 'self'",
        `script-src 'nonce-${nonce}'`,
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        `form-action 'self' ${this.psp.hostedPageOrigins.join(' ')}`,
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
      ].join('; '),
    );
    res.setHeader('Cache-Control', 'no-store');
    res.status(status).type('html').send(render({ nonce, cardFormAvailable: this.psp.cardFormAvailable }));
  }
}

/** One form field as a string ('' when absent or repeated). */
function field(body: Form, name: string): string {
  const value = body?.[name];
  return typeof value === 'string' ? value : '';
}
