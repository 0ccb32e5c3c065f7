import { createHash } from 'node:crypto';
import { Ajv, type CodeOptions, type ValidateFunction } from 'ajv';
import type { Logger } from '../../platform/observability/logger.ts';
import { clip } from '../../platform/text.ts';
import { ToolError, type Tool, type ToolRunContext, type ToolScope, type ToolSource } from './tool.ts';

export interface ToolboxSettings {
  /** Default time a call may take. */
  timeoutMs: number;
  /** Longest result text the model is given (and stored); longer ones are cut with a note. */
  maxResultChars: number;
}

/** How one call ended: what the model is given (`content`) and what is stored and streamed. */
export interface ToolOutcome {
  ok: boolean;
  /** The result as JSON (a string result as is), cut to the deployment's size. */
  content: string;
  error?: { code: string; message: string };
  durationMs: number;
}

/**
 * A schema's regular expressions are never run: a schema may come from outside (an MCP server's), and
 * JavaScript's engine backtracks, so `"pattern": "^(a+)+$"` holds the whole process for half a minute
 * on 29 a's and a `!`, twice as long with each more. Every pattern counts as matching (`pattern` always
 * passes, `additionalProperties` lets a name through when the object has `patternProperties`); the
 * tool checks them itself, as an MCP server does its own inputs.
 */
const patternsUnchecked: NonNullable<CodeOptions['regExp']> = Object.assign(() => ({ test: () => true }), { code: 'patternsUnchecked' });

/** Distinct schemas whose validators are kept, the least recently used dropped first. */
const MAX_VALIDATORS = 500;
/** Validators by a hash of their schema's canonical JSON: a schema listed afresh each turn (an MCP server's) compiles once. */
const validators = new Map<string, ValidateFunction | Error>();

/** JSON with every object's keys sorted: equal schemas, whatever the order of their keys, give one text. */
const canonical = (value: unknown) =>
  JSON.stringify(value, (_, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));

function compile(schema: Record<string, unknown>): ValidateFunction | Error {
  // An Ajv per schema: a shared one keeps every schema it compiled (memory without end), refuses a second
  // schema with an `$id` it holds, and would let one server's `$ref` reach another's schema.
  // No logger: a schema's `format` Ajv does not know (email, uri… as MCP servers write them) is ignored, as the tool
  // checks its own inputs, and saying so on stderr once per distinct schema was noise.
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false, code: { regExp: patternsUnchecked } });
  // With every pattern matching, its subschema would apply to every property: not applied at all.
  ajv.removeKeyword('patternProperties');
  try {
    return ajv.compile(schema);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function validatorOf(tool: Tool): ValidateFunction | Error {
  const key = createHash('sha256').update(canonical(tool.parameters)).digest('base64url');
  let v = validators.get(key);
  if (v) validators.delete(key);
  else v = compile(tool.parameters);
  validators.set(key, v);
  if (validators.size > MAX_VALIDATORS) validators.delete(validators.keys().next().value!);
  return v;
}

/** How many schemas have a validator kept (at most MAX_VALIDATORS). */
export const validatorCount = () => validators.size;

const failed = (code: string, message: string, startedAt: number): ToolOutcome => ({ ok: false, content: JSON.stringify({ error: message }), error: { code, message }, durationMs: Date.now() - startedAt });

/**
 * The tools of every module, offered per turn and run with the loop's rules:
 * arguments parsed and checked against the tool's schema, a time limit, a
 * cap on the result; every failure becomes an error the model reads, never a
 * thrown one.
 */
export function createToolbox(d: { sources: () => ToolSource[]; settings: ToolboxSettings; logger: Logger }) {
  /** Every source's tools for this scope that `keep` accepts, the first of a name winning; a source that fails lists none. */
  async function listed(scope: ToolScope, keep: (source: ToolSource, tool: Tool) => boolean): Promise<Tool[]> {
    const lists = await Promise.all(
      d.sources().map(async (source) => {
        try {
          return { source, tools: await source.list(scope) };
        } catch (err) {
          // One source down (an MCP server gone) must not take the others with it.
          d.logger.warn({ err }, 'a tool source could not list its tools');
          return { source, tools: [] };
        }
      }),
    );
    const byName = new Map<string, Tool>();
    for (const { source, tools } of lists) for (const t of tools) if (keep(source, t) && !byName.has(t.name)) byName.set(t.name, t);
    return [...byName.values()];
  }

  return {
    /** The tools offered in this scope: those the project names (`enabled`) and those their source offers by itself. */
    offered(scope: ToolScope, enabled: readonly string[]): Promise<Tool[]> {
      const wanted = new Set(enabled);
      return listed(scope, (source, t) => !!source.offersAll || wanted.has(t.name));
    },

    /** Every tool the sources list for this scope, offered or not (for listing what a project may enable). */
    all: (scope: ToolScope): Promise<Tool[]> => listed(scope, () => true),

    /** Parses `argumentsText` and checks it: the arguments, or the outcome telling the model what is wrong. */
    parse(tool: Tool | undefined, name: string, argumentsText: string): { args: Record<string, unknown> } | { outcome: ToolOutcome } {
      const now = Date.now();
      if (!tool) return { outcome: failed('unknown_tool', `There is no tool named "${name}"`, now) };
      let args: unknown;
      try {
        args = argumentsText.trim() ? JSON.parse(argumentsText) : {};
      } catch {
        return { outcome: failed('invalid_arguments', `The arguments are not valid JSON: ${clip(argumentsText, 200)}`, now) };
      }
      if (typeof args !== 'object' || args === null || Array.isArray(args)) return { outcome: failed('invalid_arguments', 'The arguments must be a JSON object', now) };
      const validate = validatorOf(tool);
      if (validate instanceof Error) return { outcome: failed('tool_unavailable', `The tool "${name}" has an invalid schema`, now) };
      if (!validate(args)) {
        const why = (validate.errors ?? []).map((e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`).join('; ');
        return { outcome: failed('invalid_arguments', `The arguments do not match the tool's schema: ${why}`, now) };
      }
      return { args: args as Record<string, unknown> };
    },

    /** Runs one call within its time limit; aborted with the turn. Never throws. */
    async run(tool: Tool, args: Record<string, unknown>, ctx: Omit<ToolRunContext, 'signal'> & { signal: AbortSignal }): Promise<ToolOutcome> {
      const startedAt = Date.now();
      const timeoutMs = tool.timeoutMs ?? d.settings.timeoutMs;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      try {
        const result = await new Promise<unknown>((resolve, reject) => {
          const abort = () => reject(signal.reason);
          if (signal.aborted) return abort();
          signal.addEventListener('abort', abort, { once: true });
          tool.run(args, { ...ctx, signal }).then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
        });
        const text = typeof result === 'string' ? result : (JSON.stringify(result) ?? 'null');
        const content = text.length > d.settings.maxResultChars ? `${clip(text, d.settings.maxResultChars)}\n[result cut: ${text.length} characters, the first ${d.settings.maxResultChars} shown]` : text;
        return { ok: true, content, durationMs: Date.now() - startedAt };
      } catch (err) {
        if (ctx.signal.aborted) return failed('cancelled', 'The turn was stopped while the tool ran', startedAt);
        if (timeout.aborted) return failed('tool_timeout', `The tool did not answer within ${timeoutMs} ms`, startedAt);
        if (err instanceof ToolError) return failed(err.code, err.message, startedAt);
        d.logger.warn({ err, tool: tool.name }, 'a tool failed');
        return failed('tool_failed', `The tool "${tool.name}" failed`, startedAt);
      }
    },
  };
}

export type Toolbox = ReturnType<typeof createToolbox>;
