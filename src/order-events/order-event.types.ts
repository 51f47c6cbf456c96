/** The body POSTed to endpoints and stored in the outbox (CONTRACT section 5). */
export interface OrderEventBody {
  id: string;
  type: string;
  createdAt: string;
  sequence: number;
  data: Record<string, unknown>;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

/** A delivery the sender holds a lease on, with what it needs to send it. */
export interface ClaimedDelivery {
  eventId: string;
  endpoint: string;
  /** The attempt number this claim made; the result is recorded only if nobody claimed it since. */
  attempt: number;
  retryFrom: Date;
  /** When the event was written (for the delivery latency). */
  createdAt: Date;
  /** The JSON to POST: an OrderEventBody. */
  body: string;
}

/** What one send came to. */
export interface DeliveryResult {
  eventId: string;
  endpoint: string;
  attempt: number;
  status: DeliveryStatus;
  nextAttemptAt: Date;
  httpStatus: number | null;
  error: string | null;
}
