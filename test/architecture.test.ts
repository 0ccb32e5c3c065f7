import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { MODULES } from '../src/modules/index.ts';

const root = path.resolve(fileURLToPath(import.meta.url), '../..');
const src = path.join(root, 'src');
const modulesDir = path.join(src, 'modules');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

const rel = (file: string) => path.relative(root, file);

/** The module a file belongs to (its folder under src/modules), or undefined outside any module. */
function moduleOf(file: string): string | undefined {
  const r = path.relative(modulesDir, file);
  if (r.startsWith('..')) return undefined;
  const parts = r.split(path.sep);
  return parts.length > 1 ? parts[0] : undefined;
}

interface Import {
  from: string;
  target: string;
  names: string[];
  typeOnly: boolean;
}

/** Every relative import and re-export of a file: `import … from`, `export … from`, `import('…')`. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)'/g;
  for (const m of text.matchAll(statement)) {
    if (!m[4]!.startsWith('.')) continue;
    const names = [...(m[3]!.match(/\{([^}]*)\}/)?.[1] ?? '').split(',')].map((n) => n.trim()).filter(Boolean);
    found.push({
      from: file,
      target: path.resolve(path.dirname(file), m[4]!),
      names: names.filter((n) => !n.startsWith('type ')).map((n) => n.split(/\s+as\s+/)[0]!),
      typeOnly: Boolean(m[2]) || (names.length > 0 && names.every((n) => n.startsWith('type '))),
    });
  }
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) {
    if (m[1]!.startsWith('.')) found.push({ from: file, target: path.resolve(path.dirname(file), m[1]!), names: [], typeOnly: false });
  }
  return found;
}

const files = walk(src);

describe('module boundaries', () => {
  test('outside a module, code imports only its index.ts', () => {
    const offenders: string[] = [];
    for (const file of files) {
      for (const imp of importsOf(file)) {
        const target = moduleOf(imp.target);
        if (!target || target === moduleOf(file)) continue;
        if (imp.target !== path.join(modulesDir, target, 'index.ts')) offenders.push(`${rel(file)} → ${rel(imp.target)}`);
      }
    }
    assert.deepEqual(offenders, [], `these files reach past another module's front door:\n${offenders.join('\n')}`);
  });

  test('every module folder has an index.ts and is in MODULES once', () => {
    const folders = readdirSync(modulesDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    const listed = MODULES.map((m) => m.name).sort();
    assert.deepEqual(listed, folders);
    for (const name of folders) assert.ok(files.includes(path.join(modulesDir, name, 'index.ts')), `${name} has no index.ts`);
  });

  test('a module needs only services that modules before it provide, and provides each name once', () => {
    const provided = new Set<string>();
    for (const m of MODULES) {
      for (const need of m.needs ?? []) assert.ok(provided.has(need), `${m.name} needs "${need}", which no module before it provides`);
      for (const name of m.provides ?? []) {
        assert.ok(!provided.has(name), `"${name}" is provided twice`);
        provided.add(name);
      }
    }
    for (const m of MODULES) for (const use of m.uses ?? []) assert.ok(provided.has(use), `${m.name} uses "${use}", which no module provides`);
  });
});

describe('table ownership', () => {
  const schemaFiles = files.filter((f) => path.basename(f) === 'schema.ts');
  const owners = new Map<unknown, string>();
  for (const m of MODULES) for (const table of Object.values(m.tables ?? {})) owners.set(table, m.name);

  test('every table in a module schema.ts is declared by that module, and by no other', async () => {
    const problems: string[] = [];
    for (const file of schemaFiles) {
      const owner = moduleOf(file);
      const exports = await import(pathToFileURL(file).href);
      for (const [name, value] of Object.entries(exports)) {
        if (!is(value, PgTable)) continue;
        if (owner && owners.get(value) !== owner) problems.push(`${rel(file)}: ${name} is declared by ${owners.get(value) ?? 'no module'}, not ${owner}`);
        if (!owner && owners.has(value)) problems.push(`${rel(file)}: ${name} is the platform's, yet module ${owners.get(value)} declares it`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test("another module's table is imported only by a schema.ts, to reference it in a foreign key", async () => {
    const tableNames = new Map<string, Set<string>>();
    for (const m of MODULES) {
      const exports = await import(pathToFileURL(path.join(modulesDir, m.name, 'index.ts')).href);
      tableNames.set(m.name, new Set(Object.entries(exports).filter(([, v]) => is(v, PgTable)).map(([k]) => k)));
    }
    const offenders: string[] = [];
    for (const file of files) {
      if (path.basename(file) === 'schema.ts') continue;
      for (const imp of importsOf(file)) {
        const target = moduleOf(imp.target);
        if (!target || target === moduleOf(file) || imp.typeOnly) continue;
        for (const name of imp.names) if (tableNames.get(target)?.has(name)) offenders.push(`${rel(file)} imports ${target}'s table ${name}`);
      }
    }
    assert.deepEqual(offenders, [], 'a module queries another module through its services, never its tables');
  });
});
