/** The Bull queue every accepted PSP event goes through; job id = event id. */
export const WEBHOOK_QUEUE = 'webhook-events';
