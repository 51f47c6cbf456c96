/**
 * The addresses Stripe sends webhook deliveries from, used when
 * WEBHOOK_ALLOWED_IPS=stripe.
 *
 * Source: the "Webhook notifications" section of https://docs.stripe.com/ips,
 * whose machine-readable list is https://stripe.com/files/ips/ips_webhooks.txt
 * (also .json). Copied on 2026-11-30 from that file as published on
 * 2026-05-15 (15 addresses, no ranges). Stripe announces changes seven days
 * ahead on its api-announce mailing list; README "Webhook gate" says how to
 * refresh this list.
 */
export const STRIPE_WEBHOOK_IPS_AS_OF = '2026-05-15';

export const STRIPE_WEBHOOK_IPS: readonly string[] = [
  '3.18.12.63',
  '3.69.109.8',
  '3.120.168.93',
  '3.130.192.231',
  '13.235.14.237',
  '13.235.122.149',
  '18.211.135.69',
  '35.154.171.200',
  '35.157.207.129',
  '52.15.183.38',
  '54.88.130.119',
  '54.88.130.237',
  '54.187.174.169',
  '54.187.205.235',
  '54.187.216.72',
];
