/** How every phase reports (run.ts's `phase`): a labelled step, its summary line, and the CPU of `pid` meanwhile. */
export type Phase = <T>(label: string, run: () => Promise<T>, summary: (r: T) => string, pid?: number) => Promise<T>;
