import { existsSync, readFileSync } from 'node:fs';
import { registerHooks, type ResolveFnOutput } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/*
 * Loaded before each test file (`npm test`: --import): the same modules, found in half the time.
 *
 * Node 24's ESM resolver reads a file's package.json `type` through getPackageScopeConfig, which
 * copies the lazily parsed package.json and so parses its whole `exports` field again, for every
 * import it resolves. drizzle-orm's `exports` is 130 KB and its files are resolved some 550 times
 * per process: about 1 s of the 2 s each test process took to import the app, paid by every one of
 * the suite's files. These hooks answer the two common cases without asking Node's resolver again:
 * a relative `.js` import inside an ESM package (the URL joined, format `module`, as Node would
 * answer), and a package the project's own files import (Node's answer the first time, kept).
 * Anything else goes to Node as before. The server itself runs from a bundle and never needs this.
 */

const root = pathToFileURL(path.resolve(fileURLToPath(new URL('../..', import.meta.url)))).href + '/';

/** Each directory's nearest package.json `type` ('none' without one), as Node reads it. */
const types = new Map<string, string>();
function packageTypeOf(dir: string): string {
  let type = types.get(dir);
  if (type !== undefined) return type;
  const file = path.join(dir, 'package.json');
  if (existsSync(file)) type = (JSON.parse(readFileSync(file, 'utf8')) as { type?: string }).type ?? 'none';
  else type = path.dirname(dir) === dir ? 'none' : packageTypeOf(path.dirname(dir));
  types.set(dir, type);
  return type;
}

/** Packages as the project's files import them: one node_modules, so one answer whichever file asks. */
const packages = new Map<string, ResolveFnOutput>();

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL;
    if (parent?.startsWith('file:') && parent.includes('/node_modules/') && /^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
      const file = fileURLToPath(new URL(specifier, parent));
      if (existsSync(file) && packageTypeOf(path.dirname(file)) === 'module') return { url: pathToFileURL(file).href, format: 'module', shortCircuit: true };
    } else if (parent?.startsWith(root) && !parent.includes('/node_modules/') && /^[@a-z]/i.test(specifier) && !specifier.includes(':')) {
      const key = `${specifier}\0${context.conditions.join()}`;
      let resolved = packages.get(key);
      if (!resolved) packages.set(key, (resolved = { ...nextResolve(specifier, context), shortCircuit: true }));
      return resolved;
    }
    return nextResolve(specifier, context);
  },
});
