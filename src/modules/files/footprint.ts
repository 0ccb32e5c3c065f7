import { sql } from 'drizzle-orm';
import type { FootprintSource } from '../usage/index.ts';
import { files } from './schema.ts';

/** What files take, for the footprint report: their stored bytes. */
export const filesFootprint: FootprintSource[] = [{ name: 'files', from: sql`${files}`, userId: files.userId, bytes: sql`${files.size}` }];
