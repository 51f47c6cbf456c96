import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * Imports run one way: no file imports itself back through others, and the
 * top-level folders of src/ form no cycle either (webhooks -> orders ->
 * psp, reconciliation -> webhooks, health -> webhooks; metrics, database,
 * config and common import no feature). Part of `npm test`, so a cycle fails it.
 */
const SRC = resolve(__dirname);

type Graph = Map<string, Set<string>>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.spec.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** The relative imports and re-exports of a file, resolved to files (type-only ones included: they shape the design too). */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false);
  const out: string[] = [];
  for (const statement of source.statements) {
    const specifier = (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier;
    if (!specifier || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) continue;
    const base = resolve(dirname(file), specifier.text);
    const target = [`${base}.ts`, join(base, 'index.ts')].find((candidate) => {
      try {
        return statSync(candidate).isFile();
      } catch {
        return false;
      }
    });
    if (target) out.push(target);
  }
  return out;
}

/** Every cycle's members, one strongly connected component (of more than one node, or a self-import) each. */
function cycles(graph: Graph): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, indices.get(next) as number));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const members: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        members.push(member);
      } while (member !== node);
      if (members.length > 1 || graph.get(node)?.has(node)) found.push(members.sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

function add(graph: Graph, from: string, to: string): void {
  if (!graph.has(from)) graph.set(from, new Set());
  if (!graph.has(to)) graph.set(to, new Set());
  (graph.get(from) as Set<string>).add(to);
}

describe('imports of src/', () => {
  const files: Graph = new Map();
  const folders: Graph = new Map();
  for (const file of sourceFiles(SRC)) {
    files.set(relative(SRC, file), files.get(relative(SRC, file)) ?? new Set());
    for (const target of importsOf(file)) {
      add(files, relative(SRC, file), relative(SRC, target));
      const [from, to] = [relative(SRC, file).split(sep), relative(SRC, target).split(sep)];
      // Files at the top of src/ (main, bootstrap, app.module) compose everything; only folders are layered.
      if (from.length > 1 && to.length > 1 && from[0] !== to[0]) add(folders, from[0] as string, to[0] as string);
    }
  }

  it('finds the cycle in a graph that has one (the check can fail)', () => {
    const graph: Graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c']]);
  });

  it('has no import cycle between files', () => {
    expect(files.size).toBeGreaterThan(50);
    expect(cycles(files)).toEqual([]);
  });

  it('keeps the demo storefront a leaf: only the app module imports it, and it uses only orders, the PSP SDK factory, config and common', () => {
    const importers = [...files].filter(([from, to]) => !from.startsWith(`storefront${sep}`) && [...to].some((t) => t.startsWith(`storefront${sep}`))).map(([from]) => from);
    expect(importers).toEqual(['app.module.ts']);
    expect([...(folders.get('storefront') ?? [])].sort()).toEqual(['common', 'config', 'orders', 'psp']);
  });

  it('has no cycle between the top-level folders', () => {
    expect(folders.get('webhooks')?.has('orders')).toBe(true);
    expect(cycles(folders)).toEqual([]);
  });
});
