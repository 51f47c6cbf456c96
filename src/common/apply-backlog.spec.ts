import { ApplyBacklog, BEHIND_BATCH, BEHIND_FOR_MS } from './apply-backlog';

describe('ApplyBacklog', () => {
  it('is behind for BEHIND_FOR_MS after a batch of BEHIND_BATCH events or more, and not after smaller ones', () => {
    const backlog = new ApplyBacklog();
    expect(backlog.behind(0)).toBe(false);
    backlog.noteBatch(BEHIND_BATCH - 1, 1000);
    expect(backlog.behind(1000)).toBe(false);
    backlog.noteBatch(BEHIND_BATCH, 2000);
    expect(backlog.behind(2000)).toBe(true);
    backlog.noteBatch(1, 2100);
    expect(backlog.behind(2000 + BEHIND_FOR_MS - 1)).toBe(true);
    expect(backlog.behind(2000 + BEHIND_FOR_MS)).toBe(false);
  });
});
