
/**
 * The contract between the AI module (providers, catalog, fallback) and its
 * callers (chat generation, the OpenAI-compatible gateway, title generation).
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** The message's text (for a message with `parts`: its text parts joined), which tokens and budgets are counted on. */
  content: string;
  /**
   * For role 'user': the message as text and images in order, when it carries
   * images; drivers send these instead of `content`, each in its provider's
   * own format (OpenAI `image_url`, Anthropic `image` blocks).
   */
  parts?: ChatPart[];
  /** For role 'tool': the call this answers. */
  toolCallId?: string;
  /** For role 'assistant': calls the model made. */
  toolCalls?: ToolCall[];
}

export type ChatPart =
  | { type: 'text'; text: string }
  /** `url`: a `data:<type>;base64,…` URL or an https URL; `detail` as OpenAI takes it, passed on where the provider has one. */
  | { type: 'image'; url: string; detail?: string };

/** Whether a request shows the model any image (it then needs a model that can see). */
export const hasImages = (messages: ChatMessage[]) => messages.some((m) => m.parts?.some((p) => p.type === 'image'));

/** A request's response format by the name the caller's API gives it (see ChatRequest's `responseFormat`). */
export const formatParam = (format: NonNullable<ChatRequest['responseFormat']>) => format.param ?? 'response_format';

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, as the model produced it. */
  arguments: string;
}

export interface ChatRequest {
  /** `provider:model` ids, tried in order; later links are used only on retryable failures before the first token. */
  chain: string[];
  messages: ChatMessage[];
  temperature?: number;
  /** Nucleus sampling, 0..1; left out where temperature is (OpenAI's reasoning models). */
  topP?: number;
  /** Sample from the k likeliest tokens; sent only to providers that take it (not OpenAI's own API). */
  topK?: number;
  /** At most this many output tokens; a link whose model (the catalog's maxOutputTokens) takes fewer is asked for its most. */
  maxTokens?: number;
  /** Sequences that end the output where the provider meets one (OpenAI's `stop`): the answer is the text before it. */
  stop?: string[];
  tools?: ToolDefinition[];
  toolChoice?: 'auto' | 'none' | 'required' | { name: string };
  /**
   * Structured output (OpenAI's `response_format`, the Responses API's `text.format`): the answer is JSON, an
   * object matching `schema` when there is one; `name` and `description` guide the model, `strict` asks for
   * exact adherence where the provider has it. Absent: text. A provider that cannot honour it fails its link
   * (`unsupported_parameter`) rather than answer in free text. `param` is the caller's API's name for it (`text.format`,
   * `output_config.format`), which such a refusal names; absent, `response_format`.
   */
  responseFormat?: { type: 'json'; schema?: Record<string, unknown>; name?: string; description?: string; strict?: boolean; param?: string };
  signal?: AbortSignal;
  /** Who the call is for: with it, the call is checked against budgets first and metered after. */
  meter?: MeterContext;
  /** A budget reservation already made for this call (`Ai.admit`): the call draws on it instead of reserving again. */
  admitted?: MeteredCall;
  /** The gateway's stream, for an upstream that speaks its wire format (see ChunkRelay). */
  relay?: ChunkRelay;
  /**
   * The caller wants the answer only when it is whole (a non-streaming gateway call): a model that can
   * (`ChatModel.answersWhole`) asks its upstream without streaming, which spares a read and a part per
   * token. Such an attempt is bounded by the answer timeout instead of the first-token and idle ones.
   */
  whole?: boolean;
}

/**
 * Where an OpenAI-compatible upstream's text chunks go as they are, once the
 * link has answered: the Chat Completions driver hands each plain text frame
 * (`data: {…}` lines, one `chat.completion.chunk` each) to `forward` instead of
 * parsing it and letting the gateway rebuild it. Everything else (the first
 * output, tool calls, reasoning, the finish and usage chunks, errors) still
 * arrives as events, in order.
 */
export interface ChunkRelay {
  /** Sends the frames on (after rewriting what must name Parley), `text` being theirs; false when the socket wants a drain first. */
  forward(frames: string, text: string): boolean;
  drained(): Promise<void>;
  /** The text of every forwarded frame so far, for counting tokens when usage is missing. */
  text: string;
}

export interface MeterContext {
  source: 'chat' | 'gateway' | 'title' | 'embedding' | 'document' | 'sandbox' | 'moderation' | 'job';
  userId: string;
  /** The caller's role, for per-role token rate limits. */
  role?: 'user' | 'admin';
  apiKeyId?: string | null;
  projectId?: string | null;
  conversationId?: string | null;
  messageId?: string | null;
  /**
   * The id of the usage event a successful call records. A caller that may run
   * the same call again after its success was recorded (a background job whose
   * worker died before marking it done) passes one derived from the job: the
   * second success is then not recorded, so it is charged once. Failed and
   * cancelled calls always get an event of their own (the provider billed them).
   */
  usageEventId?: string;
}

/** How a metered call ended. Tokens and cost are what was (or, without a provider report, would be) billed. */
export interface CallOutcome {
  status: 'ok' | 'failed' | 'cancelled';
  provider: string | null;
  model: string | null;
  usage: Usage;
  costMicros: number | null;
  latencyMs: number;
  ttftMs: number | null;
  attempts: FailedAttempt[];
}

/**
 * The usage module, as the AI module sees it. `begin` runs before any
 * upstream call and throws (402 budget_exceeded) to refuse it; the function
 * it returns is called exactly once when the call ends, however it ends; by the
 * time it resolves, the settlement of the budgets it drew on is under way, ahead
 * of any later call of this process, so the caller's next call sees what this
 * one spent.
 */
export interface Metering {
  begin(meter: MeterContext, request: ChatRequest, estimate: { micros: number; tokens: number }): Promise<MeteredCall>;
}

/** A call admitted against its budgets: ended exactly once, or released if it never starts. */
export interface MeteredCall {
  /** Records how the call ended (for `meter` as it stands then: the message id may be known only now) and swaps its reservation for what it spent. */
  end(outcome: CallOutcome, meter: MeterContext): Promise<void>;
  /** Gives the reservation back, recording nothing: the call never started. */
  release(): void;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens served from the provider's prompt cache, when it reports them. */
  cachedTokens?: number;
}

export type ChatEvent =
  /** An attempt starts on this link of the chain. */
  | { type: 'attempt'; provider: string; model: string }
  /** That attempt failed before its first token; the next link (or a retry) follows. */
  | { type: 'attempt_failed'; attempt: FailedAttempt }
  | { type: 'delta'; text: string }
  | { type: 'tool_call'; call: ToolCall }
  | {
      type: 'finish';
      provider: string;
      model: string;
      finishReason: string;
      usage: Usage;
      /** Micro-dollars from the catalog's prices; null when a price is unknown. */
      costMicros: number | null;
      /** Time to first token, ms from the start of the successful attempt. */
      ttftMs: number | null;
    };

export interface ModelInfo {
  /** `provider:model` */
  id: string;
  provider: string;
  model: string;
  contextWindow: number | null;
  maxOutputTokens: number | null;
  /** Takes images as input (the built-in table or PARLEY_AI_CONFIG says so; false when unknown). */
  vision: boolean;
  /** USD per million tokens; null when unknown (never shown as zero). */
  pricing: { input: number; output: number; cachedInput?: number } | null;
}

/**
 * Errors streamChat throws (typed AppErrors from src/errors.ts):
 * - before any token, when every link failed: UpstreamFailed (502, code `all_providers_failed`)
 *   carrying the attempts in `extra.attempts`;
 * - after tokens were sent, when the stream breaks: UpstreamFailed (code `stream_interrupted`);
 * - an unknown model id: ValidationError (code `unknown_model`);
 * - aborted through `signal`: the AbortError is rethrown as is.
 */
export interface Ai {
  models(): ModelInfo[];
  model(id: string): ModelInfo | undefined;
  streamChat(request: ChatRequest): AsyncIterable<ChatEvent>;
  /**
   * Checks and reserves a metered request's budgets now (402 budget_exceeded
   * when one has no room), for a caller that must refuse before it writes
   * anything; pass the result as `request.admitted`. Undefined when unmetered.
   */
  admit(request: ChatRequest): Promise<MeteredCall | undefined>;
  /** Tokens of a text as the model's tokenizer counts them (approximate for non-OpenAI models). */
  countTokens(modelId: string, text: string): number;
  /**
   * The links of `chain` that can take `messages`: all of them for text; with
   * images, the vision-capable ones, after a 400 `model_cannot_see_images`
   * when the first cannot see. streamChat applies it itself; a caller that
   * must refuse before it writes anything calls it first.
   */
  chainFor(chain: string[], messages: ChatMessage[]): string[];
}

/** One provider attempt that failed before another answered (or all failed), as stored with the message. */
export interface FailedAttempt {
  provider: string;
  model: string;
  error: string;
  code: string;
  status?: number;
  at: string;
}
