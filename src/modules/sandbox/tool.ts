import { AppError } from '../../errors.ts';
import { ToolError, type Tool } from '../tools/index.ts';
import type { Sandbox } from './service.ts';

/** Console lines the model is given: the first ones, each cut, so a chatty script cannot fill its context. */
const OUTPUT_LINES = 50;
const LINE_CHARS = 1_000;

/**
 * `run_javascript`: a script run in the sandbox for the turn's caller, metered
 * to them (and refused with their budget), under the project's CPU and memory
 * limits. A script that throws or runs out of time is an answer the model
 * reads (and can fix), not a failed call.
 */
export function runJavascriptTool(d: { sandbox: Pick<Sandbox, 'run' | 'caps'> }): Tool {
  return {
    name: 'run_javascript',
    description:
      'Runs JavaScript in an isolated sandbox (no network, no file system, no require/import) and returns its result and console output. ' +
      'The value of the last expression is the result; with top-level `return` or `await` the code runs as an async function body and its return value is the result. ' +
      'The result must be JSON-serializable. `input` is available to the script as the global `input`. CPU time and memory are limited.',
    parameters: {
      type: 'object',
      properties: {
        code: { type: 'string', minLength: 1, description: 'The JavaScript to run.' },
        input: { description: 'Any JSON value, seen by the script as the global `input`.' },
      },
      required: ['code'],
      additionalProperties: false,
    },
    async run(args, ctx) {
      // The project's limits, within the deployment's (the service refuses more rather than lowering it).
      const timeoutMs = ctx.limits.sandboxTimeoutMs && Math.min(ctx.limits.sandboxTimeoutMs, d.sandbox.caps.cpuMs);
      const memoryMb = ctx.limits.sandboxMemoryMb && Math.min(ctx.limits.sandboxMemoryMb, d.sandbox.caps.memoryMb);
      let run;
      try {
        run = await d.sandbox.run(
          { userId: ctx.userId, apiKeyId: ctx.apiKeyId, projectId: ctx.projectId },
          { code: args.code as string, input: args.input, timeoutMs, memoryMb },
        );
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        if (err.code === 'sandbox_busy') throw new ToolError('The sandbox is busy with other runs; try again in a moment', 'sandbox_busy');
        // A budget used up (402), too large a script, a limit out of range: the model (or the project's settings) must change something.
        throw new ToolError(`The script was not run: ${err.message}`, err.code);
      }
      const output = run.output.slice(0, OUTPUT_LINES).map((line) => `${line.level === 'log' ? '' : `[${line.level}] `}${line.message.length > LINE_CHARS ? `${line.message.slice(0, LINE_CHARS)}…` : line.message}`);
      if (run.truncated || run.output.length > OUTPUT_LINES) output.push('[output cut]');
      return {
        status: run.status,
        result: run.result,
        ...(output.length && { output }),
        ...(run.error && { error: run.error }),
      };
    },
  };
}
