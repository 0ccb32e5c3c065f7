import type { FastifyReply, FastifyRequest } from 'fastify';
import { NotFound, ValidationError } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import type { ServiceMap } from '../module.ts';
import type { AiService } from './service.ts';
import type { ChatMessage } from './types.ts';

/** Most links one call's chain may hold: each is a full request upstream when the ones before it fail. */
export const MAX_CHAIN_LINKS = 9;

/**
 * A comma-separated fallback chain (`anthropic:claude-sonnet-4-5,openai:gpt-4o-mini`) and any more names,
 * each resolved to a catalog id, each once; an unknown one is a 404 on `model`, more than MAX_CHAIN_LINKS
 * a 400 (a chain of 500 names was 500 upstream calls for one request).
 */
export function resolveChain(ai: AiService, model: string, more: string[] = []): string[] {
  const names = [...model.split(','), ...more].map((s) => s.trim()).filter(Boolean);
  if (names.length > MAX_CHAIN_LINKS * 4) throw chainTooLong(names.length);
  const ids = new Set<string>();
  for (const name of names) {
    const id = ai.resolve(name);
    if (!id) throw NotFound(`Model "${name}"`, 'model_not_found');
    ids.add(id);
  }
  if (ids.size > MAX_CHAIN_LINKS) throw chainTooLong(ids.size);
  return [...ids];
}

const chainTooLong = (n: number) => ValidationError(`A fallback chain holds at most ${MAX_CHAIN_LINKS} models (this one ${n})`, 'validation_failed', { param: 'model' });

/** What a caller wrote, for the safety checks: its user and system messages (tool results and earlier answers are not its words). */
export const callerTexts = (messages: ReadonlyArray<Pick<ChatMessage, 'role' | 'content'>>): string[] =>
  messages.flatMap((m) => ((m.role === 'user' || m.role === 'system') && m.content ? [m.content] : []));

/**
 * What every gateway route (Chat Completions, Messages, Responses) does
 * before its model call: the caller's token limit checked, what it sends
 * checked by the deployment's safety rules and moderation provider (422
 * `content_flagged`; nothing when none are configured), an abort for a
 * client that hangs up (an upstream generation, and its bill, should not run
 * on for nobody), and the meter that makes the call count as the gateway's.
 * Metering and budgets then happen inside streamChat, as for every model call.
 */
export async function gatewayCall(request: FastifyRequest, reply: FastifyReply, services: Pick<ServiceMap, 'limits' | 'safety'>, messages: ChatMessage[]) {
  const caller = principal(request);
  await services.limits.checkTokens(caller);
  if (services.safety.checksRequests) await services.safety.checkRequest({ userId: caller.userId, apiKeyId: caller.apiKeyId ?? null }, callerTexts(messages));
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  const meter = { source: 'gateway' as const, userId: caller.userId, role: caller.role, apiKeyId: caller.apiKeyId ?? null };
  return { caller, signal: controller.signal, meter };
}
