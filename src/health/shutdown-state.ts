import { Injectable } from '@nestjs/common';

/**
 * Set by the shutdown sequence (bootstrap.ts stopApp) before anything closes:
 * /health/ready then fails, so a load balancer stops sending while the
 * listener still answers what it already sent.
 */
@Injectable()
export class ShutdownState {
  draining = false;
}
