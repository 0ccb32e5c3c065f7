import { parseArgs } from 'node:util';
import { z } from 'zod';
import { randomToken } from '../platform/crypto/cipher.ts';
import type { Deps } from '../deps.ts';
import { passwords } from '../modules/auth/index.ts';
import { UsageError } from '../processes.ts';
import { createServices } from '../services.ts';

export const ADMIN_USAGE =
  'Usage: parley admin create-user --email <email> [--password <password>] [--name <name>] [--admin]\n' +
  '       parley admin rotate-jwt-key\n';

/** An `admin` task as its arguments ask for it, read before any database is opened. */
export type AdminTask = { task: 'help' } | { task: 'rotate-jwt-key' } | { task: 'create-user'; email: string; password?: string; name?: string; admin: boolean };

/** The address the sign-in API accepts: an account made here with any other could never sign in. */
const email = z.email().max(320);

/** Reads `admin …`'s arguments; a UsageError (exit 64, with the usage) for anything it cannot run. */
export function parseAdminArgs(argv: string[]): AdminTask {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') return { task: 'help' };
  // parseArgs throws for an unknown option, a missing value or a stray argument: the operator's to correct.
  const parsed = <T>(read: () => T): T => {
    try {
      return read();
    } catch (err) {
      throw new UsageError(`admin ${sub}: ${(err as Error).message}`);
    }
  };
  const help = { help: { type: 'boolean' } } as const;
  switch (sub) {
    case 'create-user': {
      const { values } = parsed(() =>
        parseArgs({ args: rest, strict: true, options: { ...help, email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' }, admin: { type: 'boolean' } } }),
      );
      if (values.help) return { task: 'help' };
      if (values.email === undefined) throw new UsageError('admin create-user needs --email');
      if (!email.safeParse(values.email).success) throw new UsageError(`admin create-user: "${values.email}" is not an email address the sign-in would accept`);
      return { task: 'create-user', email: values.email, password: values.password, name: values.name, admin: values.admin === true };
    }
    case 'rotate-jwt-key':
      return parsed(() => parseArgs({ args: rest, strict: true, options: help })).values.help ? { task: 'help' } : { task: 'rotate-jwt-key' };
    default:
      throw new UsageError(`Unknown admin command "${sub}"`);
  }
}

/** `parley admin …`: operator tasks that must work without the HTTP API. */
export async function adminCommand(deps: Deps, task: Exclude<AdminTask, { task: 'help' }>): Promise<number> {
  const services = createServices(deps);
  switch (task.task) {
    case 'create-user': {
      const password = task.password ?? randomToken(12);
      passwords.check(password, task.email);
      const user = await services.users.create({
        email: task.email,
        passwordHash: await passwords.hash(password),
        name: task.name,
        role: task.admin ? 'admin' : 'user',
        emailVerified: true,
      });
      process.stdout.write(`${JSON.stringify({ id: user.id, email: user.email, role: user.role, ...(task.password ? {} : { password }) })}\n`);
      return 0;
    }
    case 'rotate-jwt-key': {
      await services.keys.init();
      const kid = await services.keys.rotate();
      process.stdout.write(`${JSON.stringify({ kid })}\n`);
      return 0;
    }
  }
}
