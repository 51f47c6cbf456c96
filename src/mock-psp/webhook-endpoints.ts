import type Stripe from 'stripe';
import { invalidParam, missingParam, noSuchObject } from './errors';
import { newId, nowSeconds } from './ids';
import { Params } from './params';
import { LIST_PARAMS, paginate, Route, route } from './api-routes';
import { DeliveryFaults, DeliveryState, WebhookDelivery } from './webhook-delivery';

/** What create and update accept; update leaves out what it does not set. */
export interface WebhookEndpointInput {
  url?: string;
  enabledEvents?: string[];
  apiVersion?: string;
  description?: string;
  metadata?: Record<string, string>;
  disabled?: boolean;
}

interface Registered {
  object: Stripe.WebhookEndpoint;
  /** Each endpoint signs with its own secret, shown once at creation, as at Stripe. */
  delivery: WebhookDelivery;
}

const EVENT_TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)+$/;
const API_VERSION = /^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/;

/**
 * `/v1/webhook_endpoints`: endpoints registered through the API. Each new
 * event goes to every enabled endpoint whose `enabled_events` holds its type
 * (or `*`), through its own WebhookDelivery (the same retries and faults as
 * the MOCK_PSP_FORWARD_TO target), signed with the endpoint's secret.
 */
export class WebhookEndpoints {
  private readonly endpoints = new Map<string, Registered>();
  private faults: DeliveryFaults = {};
  private seed: number | undefined;

  constructor(private readonly options: { timeScale: number; maxAttempts: number }) {}

  create(input: WebhookEndpointInput): Stripe.WebhookEndpoint {
    if (input.url === undefined) throw missingParam('url');
    if (input.enabledEvents === undefined) throw missingParam('enabled_events');
    const secret = newId('whsec', 32);
    const object: Stripe.WebhookEndpoint = {
      id: newId('we'),
      object: 'webhook_endpoint',
      api_version: input.apiVersion ?? null,
      application: null,
      created: nowSeconds(),
      description: input.description || null,
      enabled_events: checkEvents(input.enabledEvents),
      livemode: false,
      metadata: input.metadata ?? {},
      status: input.disabled ? 'disabled' : 'enabled',
      url: checkUrl(input.url),
    };
    const delivery = new WebhookDelivery({ secret, timeScale: this.options.timeScale, maxAttempts: this.options.maxAttempts });
    delivery.setForwardTo(object.url);
    delivery.setFaults(this.faults, this.seed);
    this.endpoints.set(object.id, { object, delivery });
    return { ...object, secret };
  }

  retrieve(id: string): Stripe.WebhookEndpoint {
    return this.registered(id).object;
  }

  /** Newest first, as Stripe lists. */
  all(): Stripe.WebhookEndpoint[] {
    return [...this.endpoints.values()].map((r) => r.object).reverse();
  }

  update(id: string, input: WebhookEndpointInput): Stripe.WebhookEndpoint {
    const registered = this.registered(id);
    const { object } = registered;
    if (input.url !== undefined) {
      object.url = checkUrl(input.url);
      registered.delivery.setForwardTo(object.url);
    }
    if (input.enabledEvents !== undefined) object.enabled_events = checkEvents(input.enabledEvents);
    if (input.description !== undefined) object.description = input.description || null;
    if (input.metadata !== undefined) {
      object.metadata = Object.keys(input.metadata).length === 0 ? {} : Object.fromEntries(Object.entries({ ...object.metadata, ...input.metadata }).filter(([, v]) => v !== ''));
    }
    if (input.disabled !== undefined) object.status = input.disabled ? 'disabled' : 'enabled';
    return object;
  }

  delete(id: string): Stripe.DeletedWebhookEndpoint {
    const registered = this.registered(id);
    registered.delivery.stop();
    this.endpoints.delete(id);
    return { id, object: 'webhook_endpoint', deleted: true };
  }

  /** A new event: to each enabled endpoint that asked for its type. */
  deliver(event: Stripe.Event, payload: string): void {
    for (const { object, delivery } of this.endpoints.values()) {
      if (object.status !== 'enabled') continue;
      if (!object.enabled_events.includes('*') && !object.enabled_events.includes(event.type)) continue;
      delivery.enqueue(event, this.payloadFor(object, event, payload));
    }
  }

  setFaults(faults: DeliveryFaults, seed?: number): void {
    this.faults = { ...faults };
    this.seed = seed;
    for (const { delivery } of this.endpoints.values()) delivery.setFaults(faults, seed);
  }

  /** An endpoint's delivery record for one event (attempts, delivered, dropped). */
  state(endpointId: string, eventId: string): DeliveryState | undefined {
    return this.endpoints.get(endpointId)?.delivery.state(eventId);
  }

  /** The record of an endpoint that has not (yet) received the event, if any. */
  undelivered(eventId: string): DeliveryState | undefined {
    for (const { delivery } of this.endpoints.values()) {
      const state = delivery.state(eventId);
      if (state && !state.delivered) return state;
    }
    return undefined;
  }

  get busy(): boolean {
    return [...this.endpoints.values()].some((r) => r.delivery.busy);
  }

  stop(): void {
    for (const { delivery } of this.endpoints.values()) delivery.stop();
  }

  private registered(id: string): Registered {
    const registered = this.endpoints.get(id);
    if (!registered) throw noSuchObject('webhook endpoint', id);
    return registered;
  }

  /**
   * An endpoint pinned to another API version gets the event with that
   * version in its envelope. The mock does not convert the object's shape
   * between versions; the envelope is what a consumer checks its version by.
   */
  private payloadFor(endpoint: Stripe.WebhookEndpoint, event: Stripe.Event, payload: string): string {
    if (!endpoint.api_version || endpoint.api_version === event.api_version) return payload;
    return JSON.stringify({ ...event, api_version: endpoint.api_version }, null, 2);
  }
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidParam('url', `Invalid URL: ${url}. It must be an absolute http or https URL.`, 'url_invalid');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw invalidParam('url', `Invalid URL: ${url}. It must be an absolute http or https URL.`, 'url_invalid');
  }
  return url;
}

function checkEvents(events: string[]): string[] {
  if (events.length === 0) throw invalidParam('enabled_events', 'enabled_events must list at least one event type, or *.');
  events.forEach((type, index) => {
    if (type !== '*' && !EVENT_TYPE.test(type)) throw invalidParam(`enabled_events[${index}]`, `Invalid event type: ${type}`);
  });
  return [...new Set(events)];
}

function endpointInput(p: Params, creating: boolean): WebhookEndpointInput {
  const apiVersion = creating ? p.string('api_version') : undefined;
  if (apiVersion !== undefined && !API_VERSION.test(apiVersion)) {
    throw invalidParam('api_version', `Invalid Stripe API version: ${apiVersion}`);
  }
  return {
    url: p.string('url'),
    enabledEvents: p.stringArray('enabled_events'),
    apiVersion,
    description: p.string('description'),
    metadata: p.metadata(),
    disabled: creating ? undefined : p.bool('disabled'),
  };
}

/** The routes of `/v1/webhook_endpoints`. */
export function webhookEndpointRoutes(endpoints: WebhookEndpoints): Route[] {
  return [
    route('POST', '/v1/webhook_endpoints', ({ params }) => {
      const p = new Params(params, ['url', 'enabled_events', 'api_version', 'description', 'metadata', 'connect']);
      if (p.bool('connect')) throw invalidParam('connect', 'The mock PSP has no connected accounts, so it has no Connect endpoints.');
      return endpoints.create(endpointInput(p, true));
    }),
    route('GET', '/v1/webhook_endpoints', ({ params }) => {
      const p = new Params(params, LIST_PARAMS);
      return paginate(endpoints.all(), p, '/v1/webhook_endpoints');
    }),
    route('GET', '/v1/webhook_endpoints/:id', ({ params, path }) => {
      new Params(params, []);
      return endpoints.retrieve(path.id);
    }),
    // The API version is fixed at creation (Stripe refuses to change it), so update does not take it.
    route('POST', '/v1/webhook_endpoints/:id', ({ params, path }) => {
      const p = new Params(params, ['url', 'enabled_events', 'description', 'metadata', 'disabled']);
      return endpoints.update(path.id, endpointInput(p, false));
    }),
    route('DELETE', '/v1/webhook_endpoints/:id', ({ params, path }) => {
      new Params(params, []);
      return endpoints.delete(path.id);
    }),
  ];
}
