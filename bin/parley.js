#!/usr/bin/env node
// The CLI is TypeScript run directly by Node >= 24 (type stripping). When the
// node on PATH is older, re-run under the Node pinned in devDependencies.
// Where `npm install` left a server bundle (src/cli/bundle.ts), made in this
// directory and newer than every source file, that runs instead: the same
// code, started in a fraction of the time. PARLEY_BUNDLE=off always runs the
// sources.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const sources = path.join(root, 'src/main.ts');
const bundleDir = path.join(root, 'node_modules/.cache/parley/server');

/** The newest modification time among the sources and the lockfile: a bundle older than it is stale. */
function newestSource() {
  let newest = statSync(path.join(root, 'package-lock.json'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  for (const entry of readdirSync(path.join(root, 'src'), { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function entryPoint() {
  if (process.env.PARLEY_BUNDLE === 'off') return { file: sources, from: 'sources' };
  try {
    const stamp = JSON.parse(readFileSync(path.join(bundleDir, 'stamp.json'), 'utf8'));
    // Made here (it holds the sources' paths), after their last change.
    const current = stamp.root === root && typeof stamp.builtAt === 'number' && stamp.builtAt >= newestSource();
    if (current) return { file: path.join(bundleDir, 'main.js'), from: 'bundle' };
  } catch {
    // No bundle (installed with --ignore-scripts, or its build failed): the sources.
  }
  return { file: sources, from: 'sources' };
}

const entry = entryPoint();
// Said in the "parley started" log line.
process.env.PARLEY_RUNS_FROM = entry.from;
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  if (process.env.PARLEY_LAUNCHED === '1' && process.channel) {
    // Run by the launcher below: when it dies unasked (kill -9), the channel to it closes, and this process
    // drains and stops rather than hold the port and the data directory with no one to signal it.
    delete process.env.PARLEY_LAUNCHED;
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  await import(entry.file);
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`parley needs Node.js >= 24 (found ${process.versions.node}); run npm install first.\n`);
    process.exit(1);
  }
  // In a process group of its own, so that a signal reaches it once, from here: a terminal's Ctrl-C signals the whole
  // foreground group, and the server takes a second SIGINT as "stop now, without draining".
  const child = spawn(pinned, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...process.env, PARLEY_LAUNCHED: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  // As a shell reports a child a signal ended: 128 + the signal's number.
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
}
