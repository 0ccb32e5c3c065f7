import { z } from 'zod';

export const runBody = z.object({
  code: z.string().min(1).describe('JavaScript. A plain script gives the value of its last expression; one with a top-level `return` or `await` runs as the body of an async function and gives what it returns.'),
  input: z.unknown().optional().describe('Any JSON value: the script sees a copy as the global `input` (null when absent).'),
  timeoutMs: z.number().int().min(10).optional().describe('CPU time the script may use (default 500 ms, at most SANDBOX_MAX_CPU_MS).'),
  memoryMb: z.number().int().min(8).optional().describe('Heap of its isolate (default 16 MB, at most SANDBOX_MAX_MEMORY_MB).'),
});

export const runSchema = z.object({
  status: z.enum(['ok', 'error']),
  result: z.unknown().describe('The result, as JSON; null on error.'),
  output: z.array(z.object({ level: z.enum(['log', 'info', 'warn', 'error']), message: z.string() })),
  truncated: z.boolean().describe('Console output went beyond SANDBOX_MAX_OUTPUT_BYTES; the rest was dropped.'),
  error: z
    .object({
      code: z.enum(['script_error', 'syntax_error', 'timeout', 'memory_limit', 'result_not_json', 'result_too_large', 'sandbox_crashed']),
      message: z.string(),
    })
    .optional(),
  cpuMs: z.number().int(),
  wallMs: z.number().int(),
});
