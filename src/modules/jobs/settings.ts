import { z } from 'zod';
import { cronProblem, envMs } from '../../platform/config/env.ts';

export interface JobSettings {
  /**
   * Per-task cron patterns that replace the defaults in code, or `off`:
   * `SCHEDULES="usage.rollup=*\/10 * * * *;usage.abuse-check=off"`.
   */
  scheduleOverrides: Record<string, string>;
  /**
   * A running job's lock (BullMQ) or lease (database queue), renewed while it
   * runs: a worker that died holding a job loses it to another about this long later.
   */
  lockMs: number;
}

const overrides = z
  .string()
  .default('')
  .transform((raw, ctx) => {
    const out: Record<string, string> = {};
    for (const part of raw.split(';').map((p) => p.trim()).filter(Boolean)) {
      const eq = part.indexOf('=');
      if (eq < 1) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not name=cron` });
        return z.NEVER;
      }
      const name = part.slice(0, eq).trim();
      const cron = part.slice(eq + 1).trim();
      const problem = cron === 'off' ? undefined : cronProblem(cron);
      if (problem) ctx.addIssue({ code: 'custom', message: `${name}: ${problem} (or off)` });
      out[name] = cron;
    }
    return out;
  });

/** The env fields config.ts validates for background jobs. */
export const jobsEnv = {
  SCHEDULES: overrides,
  JOB_LOCK_MS: envMs(500).default(30_000),
};

const jobsEnvObject = z.object(jobsEnv);

export function jobSettings(e: z.output<typeof jobsEnvObject>): JobSettings {
  return { scheduleOverrides: e.SCHEDULES, lockMs: e.JOB_LOCK_MS };
}
