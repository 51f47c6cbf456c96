import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks a second for /proc times (USER_HZ; 100 on every Linux the bench targets). */
const TICKS = 100;

/** CPU seconds (user + system) a process has used so far; undefined when it is gone or /proc is missing. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds used so far by every process named `comm` (postgres, redis-server),
 * including children they reaped (a PostgreSQL backend that exited is counted in
 * the postmaster's cutime). Whole servers: other databases on them count too.
 */
export function serverCpuSeconds(comm: string): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      // gone between readdir and read
    }
  }
  return ticks / TICKS;
}

/** Busy and total jiffies of the whole machine (every process, every engineer on it). */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const total = cpu.reduce((a, b) => a + b, 0);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  /** Cores the app process kept busy on average. */
  appCores?: number;
  appCpuS?: number;
  /** Cores all of PostgreSQL and all of Redis used (whole servers, shared with anyone else on them). */
  postgresCores?: number;
  redisCores?: number;
  /** Share of the whole machine's CPU that was busy (anything: Postgres, Redis, the load generator, other users). */
  machineBusyPct?: number;
  wallS: number;
}

/** Measures CPU use over an interval: the app process's own, and the machine's. */
export class CpuMeter {
  private readonly app0?: number;
  private readonly machine0?: { busy: number; total: number };
  private readonly postgres0 = serverCpuSeconds('postgres');
  private readonly redis0 = serverCpuSeconds('redis-server');
  private readonly t0 = Date.now();

  constructor(private readonly pid?: number) {
    this.app0 = pid === undefined ? undefined : processCpuSeconds(pid);
    this.machine0 = machineJiffies();
  }

  read(): CpuUse {
    const wallS = (Date.now() - this.t0) / 1000;
    const app1 = this.pid === undefined ? undefined : processCpuSeconds(this.pid);
    const machine1 = machineJiffies();
    const appCpuS = app1 !== undefined && this.app0 !== undefined ? app1 - this.app0 : undefined;
    const dTotal = machine1 && this.machine0 ? machine1.total - this.machine0.total : 0;
    return {
      wallS,
      appCpuS,
      postgresCores: wallS > 0 ? (serverCpuSeconds('postgres') - this.postgres0) / wallS : undefined,
      redisCores: wallS > 0 ? (serverCpuSeconds('redis-server') - this.redis0) / wallS : undefined,
      appCores: appCpuS !== undefined && wallS > 0 ? appCpuS / wallS : undefined,
      machineBusyPct: machine1 && this.machine0 && dTotal > 0 ? (100 * (machine1.busy - this.machine0.busy)) / dTotal : undefined,
    };
  }
}
