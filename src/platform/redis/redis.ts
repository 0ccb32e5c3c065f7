import { Redis } from 'ioredis';

export function openRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 3, enableOfflineQueue: true, lazyConnect: false });
}

export type { Redis };
