// Every table, for Drizzle's relational queries and for drizzle-kit.
export * from '../../modules/users/schema.ts';
export * from '../../modules/auth/schema.ts';
export * from '../../modules/api-keys/schema.ts';
export * from '../../modules/audit/schema.ts';
export * from '../mail/schema.ts';
export * from '../../modules/projects/schema.ts';
export * from '../../modules/chat/schema.ts';
export * from '../../modules/usage/schema.ts';
export * from '../../modules/limits/schema.ts';
export * from '../queue/schema.ts';
