import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './process.ts';

const NGINX = '/usr/sbin/nginx';
const CONF = fileURLToPath(new URL('../../deploy/nginx/nginx.conf', import.meta.url));

export const nginxAvailable = () => existsSync(NGINX);

/**
 * Debian's nginx running deploy/nginx/nginx.conf for real, in front of the
 * given local ports: only the lines marked `# local:` are rewritten.
 */
export async function startNginx(upstreamPorts: number[]): Promise<{ url: string; stop(): Promise<void> }> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'parley-nginx-'));
  const port = await freePort();
  const conf = readFileSync(CONF, 'utf8')
    .replace(/^.*# local: upstream servers$/m, upstreamPorts.map((p) => `    server 127.0.0.1:${p} max_fails=3 fail_timeout=5s;`).join('\n'))
    .replace(/^.*# local: listen$/m, `    listen 127.0.0.1:${port};`)
    .replace(/^worker_processes auto;$/m, 'worker_processes 1;');
  if (/# local: (listen|upstream servers)$/m.test(conf)) throw new Error('deploy/nginx/nginx.conf: a "# local:" line was not rewritten');
  const file = path.join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-c', file, '-g', `daemon off; pid ${path.join(prefix, 'nginx.pid')}; error_log stderr warn;`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const up = await fetch(`${url}/health`).then((r) => r.status < 500, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`nginx did not come up: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      child.kill('SIGQUIT'); // graceful: finish what is in flight
      await exited;
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
