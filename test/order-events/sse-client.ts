import { get, IncomingMessage } from 'node:http';

export interface SseMessage {
  id?: string;
  event?: string;
  data: unknown;
  /** When it arrived (Date.now()). */
  at: number;
}

/** A minimal EventSource: one connection, messages parsed as they arrive, no reconnecting. */
export class SseStream {
  readonly messages: SseMessage[] = [];
  comments = 0;
  ended = false;
  /** The server ended the response itself (a destroyed connection sets only `ended`). */
  endedCleanly = false;
  private constructor(private readonly res: IncomingMessage) {}

  static open(url: string, lastEventId?: string): Promise<{ status: number; stream: SseStream }> {
    return new Promise((resolve, reject) => {
      const req = get(url, { headers: { accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) } }, (res) => {
        const stream = new SseStream(res);
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            stream.parse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        });
        res.on('end', () => (stream.ended = stream.endedCleanly = true));
        res.on('close', () => (stream.ended = true));
        resolve({ status: res.statusCode ?? 0, stream });
      });
      req.on('error', reject);
    });
  }

  close(): void {
    this.res.destroy();
  }

  private parse(block: string): void {
    const message: Partial<SseMessage> = {};
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('id: ')) message.id = line.slice(4);
      else if (line.startsWith('event: ')) message.event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) this.messages.push({ ...message, data: JSON.parse(data.join('\n')), at: Date.now() });
  }
}
