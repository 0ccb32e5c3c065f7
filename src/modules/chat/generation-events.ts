import type { Citation } from '../knowledge/index.ts';
import type { toPublicMessage } from './messages.ts';
import type { ToolCallStatus } from './schema.ts';

export type PublicMessage = ReturnType<typeof toPublicMessage>;

/**
 * What a generation writes to its stream buffer, in order: `message.created`,
 * `citations` when it was given sources, any number of `delta`s, then `message.completed` (complete or cancelled) or
 * `error` (failed). With tools, each step's calls come as `tool.call`s after its deltas, each answered by a
 * `tool.result` before the next step's deltas; `tool.approval_required` pauses the stream until the user decides
 * (the results of the calls they decided on, then the rest, follow on the same stream, from whichever instance).
 * SSE sends each as an event of that name, `id:` its offset.
 */
export type GenerationEvent =
  | { type: 'message.created'; conversationId: string; userMessageId: string; assistantMessageId: string }
  /** The sources the answer was given (before its first delta), when its project or conversation has knowledge. */
  | { type: 'citations'; citations: Citation[] }
  | { type: 'delta'; text: string }
  /** The model called a tool; `needsApproval` when the call waits for the user. */
  | { type: 'tool.call'; id: string; name: string; arguments: string; needsApproval: boolean }
  /** A call ended (or was denied): what the model is given back. */
  | { type: 'tool.result'; id: string; name: string; status: ToolCallStatus; result: string | null; error: { code: string; message: string } | null; durationMs: number | null }
  /** The turn is paused until each of these calls is approved or denied (POST …/tool-calls/{callId}/approval). */
  | { type: 'tool.approval_required'; messageId: string; calls: Array<{ id: string; name: string; arguments: string }> }
  | { type: 'message.completed'; message: PublicMessage }
  | { type: 'error'; code: string; message: string; messageId: string };

/** An event with its offset in the stream; none when it was rebuilt from the database after the stream expired. */
export interface PositionedEvent {
  offset?: number;
  event: GenerationEvent;
}

/** The last event of a generation: how it ended. */
export type Outcome = Extract<GenerationEvent, { type: 'message.completed' | 'error' }>;

export const isOutcome = (e: GenerationEvent): e is Outcome => e.type === 'message.completed' || e.type === 'error';

/** The SSE frame of an event: its type as the event name, the rest as data. */
export function toFrame({ offset, event }: PositionedEvent) {
  const { type, ...data } = event;
  return { id: offset, event: type, data };
}

/** The outcome of a finished message as the stream would have ended, for when the stream is gone. */
export function outcomeOf(message: PublicMessage): Outcome {
  if (message.status === 'failed' || message.status === 'flagged') {
    return { type: 'error', code: message.error?.code ?? 'generation_failed', message: message.error?.message ?? 'The generation failed', messageId: message.id };
  }
  return { type: 'message.completed', message };
}
