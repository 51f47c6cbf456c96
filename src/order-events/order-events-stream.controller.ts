import { Controller, Get, Headers, Inject, OnModuleDestroy, OnModuleInit, Param, Req, Res, UseGuards } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { isOrderStatus, TRANSITIONS } from '../orders/order-status';
import { OrderRepository } from '../orders/order.repository';
import { OrderEventBody } from './order-event.types';
import { OrderEventsListener } from './order-events.listener';
import { OrderEventsRepository } from './order-events.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How often open streams look for changes no notification announced. */
const POLL_MS = 1000;
/** How far back each look goes: an event's createdAt is taken before its transaction commits, so a slow commit is still seen. */
const POLL_WINDOW_MS = 5000;

/**
 * A status the order's payment leaves no more (only needs_review can follow,
 * should money it did not ask for arrive): a checkout page has nothing more to wait for.
 */
function isTerminal(status: string): boolean {
  return isOrderStatus(status) && TRANSITIONS[status].every((to) => to === 'needs_review');
}

interface HistoryEntry {
  from: string;
  to: string;
  at: string;
  reason: string;
  eventId: string | null;
}

/**
 * GET /orders/:id/events: the order's status as Server-Sent Events, for a
 * checkout page. The SSE id is the order event's sequence, so a client that
 * reconnects with Last-Event-ID gets exactly the changes it missed, read from
 * the outbox; live changes come from any process through LISTEN/NOTIFY.
 */
@ApiTags('orders')
@Controller('orders')
export class OrderEventsStreamController implements OnModuleInit, OnModuleDestroy {
  /** The open streams, by their close function: a stopping process ends them, or the server would wait for them to time out. */
  private readonly open = new Map<() => void, { orderId: string; cursor: () => number; pump: () => void }>();
  private pollTimer?: NodeJS.Timeout;

  constructor(
    private readonly events: OrderEventsRepository,
    private readonly orders: OrderRepository,
    private readonly listener: OrderEventsListener,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    // stopApp announces 'stopping' before it waits for connections to end; clients reconnect elsewhere with Last-Event-ID.
    this.adapterHost.httpAdapter?.getHttpServer()?.once('stopping', () => this.closeAll());
  }

  onModuleDestroy(): void {
    this.closeAll();
    clearInterval(this.pollTimer);
  }

  private closeAll(): void {
    for (const close of [...this.open.keys()]) close();
  }

  /**
   * While streams are open, one query a second (for all of them) looks for
   * events committed in the last few seconds and wakes the streams that are
   * behind. NOTIFY usually gets there first; this covers what it cannot: a
   * LISTEN connection being reopened, and the embedded PGlite of `npm start`,
   * one session shared by every connection, whose notifications never reach
   * the listening one.
   */
  private pollWhileOpen(): void {
    if (this.open.size === 0) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    } else if (!this.pollTimer) {
      this.pollTimer = setInterval(() => void this.poll(), POLL_MS);
      this.pollTimer.unref();
    }
  }

  private async poll(): Promise<void> {
    try {
      const latest = await this.events.latestSequencesSince(new Date(Date.now() - POLL_WINDOW_MS));
      for (const stream of this.open.values()) {
        const sequence = latest.get(stream.orderId);
        if (sequence !== undefined && sequence > stream.cursor()) stream.pump();
      }
    } catch {
      // Database down: the next tick, a notification or a heartbeat tries again.
    }
  }

  @Get(':id/events')
  @UseGuards(ThrottlerGuard)
  @ApiOperation({ summary: 'The order status as a Server-Sent Events stream: the current status, then each change; ends after a terminal status' })
  @ApiProduces('text/event-stream')
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event (the SSE id of the last message received)' })
  @ApiResponse({ status: 200, description: 'event: status, data: {"status", "history"} (the history entry of that change; null for the initial status)' })
  @ApiResponse({ status: 204, description: 'Reconnected after the terminal status: nothing more will come' })
  @ApiResponse({ status: 404, description: 'Unknown order' })
  async stream(@Param('id') id: string, @Headers('last-event-id') lastEventId: string | undefined, @Req() req: Request, @Res() res: Response): Promise<void> {
    const status = UUID.test(id) ? (await this.orders.findOrder(id))?.status : null;
    if (!status) throw new DomainError(ErrorCode.NotFound, `Order ${id} not found`);
    const resumeFrom = lastEventId !== undefined && /^\d{1,9}$/.test(lastEventId.trim()) ? Number(lastEventId.trim()) : undefined;

    let cursor = resumeFrom ?? 0;
    let closed = false;
    let pumping: Promise<void> | undefined;
    let pumpAgain = false;
    const write = (sequence: number, body: { status: string; history: HistoryEntry | null }) => {
      res.write(`id: ${sequence}\nevent: status\ndata: ${JSON.stringify(body)}\n\n`);
      cursor = sequence;
      if (isTerminal(body.status)) close();
    };
    const writeEvent = (event: OrderEventBody) => {
      const history = (event.data.history as HistoryEntry[] | undefined) ?? [];
      write(event.sequence, { status: event.data.status as string, history: history[history.length - 1] ?? null });
    };
    // Sends what the outbox holds after the cursor; one read at a time, a wake during a read asks for another.
    const pump = (): void => {
      if (closed) return;
      if (pumping) {
        pumpAgain = true;
        return;
      }
      pumping = (async () => {
        do {
          pumpAgain = false;
          for (const event of await this.events.eventsAfter(id, cursor)) {
            if (closed) return;
            writeEvent(event);
          }
        } while (pumpAgain && !closed);
      })()
        .catch(() => undefined) // the next wake or heartbeat reads again
        .finally(() => (pumping = undefined));
    };
    // Subscribe before the first read, so nothing committed in between is missed.
    const unsubscribe = this.listener.subscribe((payload) => {
      if (payload === 'reconnected' || payload.startsWith(`${id} `)) pump();
    });
    // A comment line keeps proxies from closing an idle stream; each also re-reads the outbox in case a notification was lost.
    const heartbeat = setInterval(() => {
      res.write(': heartbeat\n\n');
      pump();
    }, this.config.orderEvents.streamHeartbeatMs);
    heartbeat.unref();
    const close = () => {
      if (closed) return;
      closed = true;
      this.open.delete(close);
      this.pollWhileOpen();
      unsubscribe();
      clearInterval(heartbeat);
      res.end();
    };
    req.on('close', close);
    this.open.set(close, { orderId: id, cursor: () => cursor, pump });
    this.pollWhileOpen();

    try {
      if (resumeFrom !== undefined) {
        const missed = await this.events.eventsAfter(id, resumeFrom);
        if (missed.length === 0 && isTerminal(status)) {
          // EventSource stops reconnecting on 204.
          closed = true;
          this.open.delete(close);
          this.pollWhileOpen();
          unsubscribe();
          clearInterval(heartbeat);
          res.status(204).end();
          return;
        }
        this.openStream(res);
        for (const event of missed) if (!closed) writeEvent(event);
      } else {
        const last = await this.events.lastEvent(id);
        this.openStream(res);
        if (last) writeEvent(last);
        else write(0, { status, history: null });
      }
      pump();
    } catch (err) {
      if (!res.headersSent) {
        closed = true;
        this.open.delete(close);
        this.pollWhileOpen();
        unsubscribe();
        clearInterval(heartbeat);
        throw err;
      }
      close();
    }
  }

  private openStream(res: Response): void {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 1000\n\n');
  }
}
