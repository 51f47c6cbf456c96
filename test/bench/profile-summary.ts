import { readFileSync } from 'node:fs';

/**
 * Where the time goes: reads a V8 .cpuprofile (node --cpu-prof, as
 * BENCH_CPU_PROF=1 writes for the Settle process) and prints the functions and
 * packages with the most self time. Only samples from seconds in which the
 * process was busy at least half the time count (the load phases, not start-up
 * or waiting between phases); `--all` counts everything.
 *   node dist-bench/test/bench/profile-summary.js bench-results/profiles/<file>.cpuprofile [top] [--all]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(url: string): string {
  if (!url) return '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return 'node core';
  const src = /\/(src\/.*|dist[^/]*\/.*)$/.exec(url);
  return src ? 'settle' : url;
}

function main(): void {
  const args = process.argv.slice(2);
  const all = args.includes('--all');
  const [file, topRaw] = args.filter((a) => a !== '--all');
  if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top] [--all]');
  const top = Number(topRaw ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));

  // Sample times, then the busy share of each second.
  const at: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) at.push((t += delta));
  const busyUs = new Map<number, number>();
  const seenUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    const second = Math.floor(((at[i] as number) - profile.startTime) / 1e6);
    const us = profile.timeDeltas[i] ?? 0;
    seenUs.set(second, (seenUs.get(second) ?? 0) + us);
    if (!idleIds.has(id)) busyUs.set(second, (busyUs.get(second) ?? 0) + us);
  });
  const loaded = (second: number) => all || (busyUs.get(second) ?? 0) >= 0.5 * (seenUs.get(second) ?? 1);

  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    if (!loaded(Math.floor(((at[i] as number) - profile.startTime) / 1e6))) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const loadedSeconds = [...seenUs.keys()].filter(loaded).length;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const short = frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|dist[^/]*)\//, '$1/');
    const key = `${frame.functionName || '(anonymous)'}  ${short ? `${short}:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const pkg = frame.url ? where(frame.url) : frame.functionName.startsWith('(') ? frame.functionName : '(native)';
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled over ${loadedSeconds} ${all ? '' : 'busy '}seconds`);
  console.log('\nSelf time by package:');
  for (const [pkg, us] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us)}  ${pkg}`);
  console.log(`\nTop ${top} functions by self time:`);
  for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${fn}`);
}

main();
