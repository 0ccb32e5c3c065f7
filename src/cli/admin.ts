import { parseArgs } from 'node:util';
import { randomToken } from '../platform/crypto/cipher.ts';
import type { Deps } from '../deps.ts';
import { passwords } from '../modules/auth/index.ts';
import { createServices } from '../services.ts';

/** `parley admin …`: operator tasks that must work without the HTTP API. */
export async function adminCommand(deps: Deps, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const services = createServices(deps);
  switch (sub) {
    case 'create-user': {
      const { values } = parseArgs({
        args: rest,
        options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' }, admin: { type: 'boolean', default: false } },
      });
      if (!values.email) {
        process.stderr.write('admin create-user needs --email\n');
        return 64;
      }
      const password = values.password ?? randomToken(12);
      passwords.check(password, values.email);
      const user = await services.users.create({
        email: values.email,
        passwordHash: await passwords.hash(password),
        name: values.name,
        role: values.admin ? 'admin' : 'user',
        emailVerified: true,
      });
      process.stdout.write(`${JSON.stringify({ id: user.id, email: user.email, role: user.role, ...(values.password ? {} : { password }) })}\n`);
      return 0;
    }
    case 'rotate-jwt-key': {
      await services.keys.init();
      const kid = await services.keys.rotate();
      process.stdout.write(`${JSON.stringify({ kid })}\n`);
      return 0;
    }
    default:
      process.stderr.write('Usage: parley admin create-user --email <email> [--password <pw>] [--admin] | parley admin rotate-jwt-key\n');
      return 64;
  }
}
