import { z } from 'zod';
import { envInt } from '../../platform/config/env.ts';

export interface ProjectLimits {
  /**
   * Projects one user may hold at once: each is listed, exported and may carry prompts, MCP servers and
   * safety rules of its own, so this bounds what one account can make the rest cost.
   */
  maxPerUser: number;
  /** Saved prompts one project may hold at once (the active one included): each is listed, exported and in its owner's footprint. */
  maxPrompts: number;
}

/** The env fields config.ts validates for projects. */
export const projectsEnv = {
  PROJECTS_MAX_PER_USER: envInt(1, 1_000_000).default(1_000),
  PROJECTS_MAX_PROMPTS: envInt(1, 1_000_000).default(1_000),
};

const projectsEnvObject = z.object(projectsEnv);

export function projectLimits(e: z.output<typeof projectsEnvObject>): ProjectLimits {
  return { maxPerUser: e.PROJECTS_MAX_PER_USER, maxPrompts: e.PROJECTS_MAX_PROMPTS };
}
