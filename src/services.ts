import type { Deps } from './deps.ts';
import { MODULES } from './modules/index.ts';
import { pickServices, type Module, type ServiceContext, type ServiceMap, type Topics } from './modules/module.ts';
import type { ToolSource } from './modules/tools/index.ts';
import type { ExportSource } from './modules/export/index.ts';
import type { ErasureSource } from './modules/users/index.ts';

export type Services = ServiceMap;

/** A module's own services and those it named (`needs` and `uses`): what its routes, schedules and hooks may use. */
export const usable = (m: Module, services: Partial<ServiceMap>) => pickServices(services, [...(m.needs ?? []), ...(m.uses ?? []), ...(m.provides ?? [])]);

const footprints = MODULES.flatMap((m) => m.footprint ?? []);
const notificationCategories = MODULES.flatMap((m) => m.notifications ?? []);
const topicsOver = (services: Partial<ServiceMap>) => (): Topics[] => MODULES.flatMap((m) => (m.topics ? [m.topics(usable(m, services))] : []));
/**
 * Each module's part of something (its tools, its part of an export or of an erasure), in MODULES order: made
 * on first use, once every service exists, and kept. `part` is undefined for a module with no such part.
 */
function perModule<T>(part: (m: Module) => T | undefined): () => T[] {
  let parts: T[] | undefined;
  return () => (parts ??= MODULES.flatMap((m) => part(m) ?? []));
}

/** Sources list per caller themselves. */
const toolSourcesOver = (services: Partial<ServiceMap>) => perModule<ToolSource>((m) => m.tools?.(usable(m, services)));
/** Each module's part of a user's data export. */
const exportSourcesOver = (deps: Deps, services: Partial<ServiceMap>) => perModule<ExportSource>((m) => m.exports?.(moduleContext(deps, services as Services, m)));
/** Each module's part of erasing a deleted account. */
const erasureSourcesOver = (deps: Deps, services: Partial<ServiceMap>) => perModule<ErasureSource>((m) => m.erasure?.(moduleContext(deps, services as Services, m)));

/**
 * Every module's services, built once over the deps, in MODULES order. Each
 * module gets only the services it named in `needs`; modules reach each
 * other only through these and the bus.
 */
export function createServices(deps: Deps): Services {
  const all: Partial<ServiceMap> = {};
  const toolSources = toolSourcesOver(all);
  const exportSources = exportSourcesOver(deps, all);
  const erasureSources = erasureSourcesOver(deps, all);
  for (const m of MODULES) {
    if (!m.services) continue;
    const provided = m.services({ deps, config: deps.config, services: pickServices(all, m.needs ?? []), footprints, topics: topicsOver(all), notificationCategories, toolSources, exportSources, erasureSources });
    for (const name of m.provides ?? []) {
      if (!(name in provided)) throw new Error(`module "${m.name}" declares service "${name}" but does not provide it`);
    }
    Object.assign(all, provided);
  }
  return all as ServiceMap;
}

/** What a module's routes, schedules and hooks get: its own and its named services, over the deps. */
export function moduleContext(deps: Deps, services: Services, m: Module): ServiceContext<any> {
  return { deps, config: deps.config, services: usable(m, services), footprints, topics: topicsOver(services), notificationCategories, toolSources: toolSourcesOver(services), exportSources: exportSourcesOver(deps, services), erasureSources: erasureSourcesOver(deps, services) };
}

/** Awaited before serving: what each module must load first (signing keys), and every cache's broadcast subscription. */
export async function startServices(deps: Deps, services: Services): Promise<void> {
  for (const m of MODULES) await m.start?.(usable(m, services));
  await deps.broadcast.settled();
}

/** Awaited on the way out, after the HTTP server has drained: pending writes flushed. */
export async function stopServices(services: Services): Promise<void> {
  for (const m of MODULES) await m.stop?.(usable(m, services));
}
