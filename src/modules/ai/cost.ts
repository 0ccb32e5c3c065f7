import type { Usage } from './types.ts';

/**
 * Money in the AI module is integer micro-dollars (1e-6 USD), never floats:
 * prices are micro-dollars per million tokens, so `tokens × price / 1e6` is
 * micro-dollars. Products are computed in BigInt (a 10M-token request at
 * $1000/MTok is 1e16, past Number's exact range) and rounded once per
 * request, half up, to the nearest micro-dollar.
 */
export interface PriceMicros {
  /** Micro-dollars per million input tokens (cache misses). */
  input: number;
  output: number;
  /** Per million input tokens read from the provider's cache; the input price when absent. */
  cachedInput?: number;
}

const DECIMAL = /^(\d+)(?:\.(\d{1,6}))?$/;

/** "0.15" (USD) → 150000 micro-dollars, exactly; throws on more than six decimals or a negative. */
export function usdToMicros(value: string | number): number {
  const text = typeof value === 'number' ? numberText(value) : value.trim();
  const m = DECIMAL.exec(text);
  if (!m) throw new RangeError(`"${value}" is not a USD amount with at most 6 decimals`);
  const micros = Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
  if (!Number.isSafeInteger(micros)) throw new RangeError(`"${value}" is too large`);
  return micros;
}

/** Micro-dollars as an exact decimal USD string: 420 → "0.000420". */
export function formatMicros(micros: number | null): string | null {
  if (micros === null) return null;
  const abs = Math.abs(micros);
  return `${micros < 0 ? '-' : ''}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, '0')}`;
}

/** For display only (the API's USD prices): micro-dollars back to a USD number. */
export const microsToUsd = (micros: number): number => micros / 1_000_000;

/**
 * Cost of one request in micro-dollars. Cached input tokens are part of
 * `inputTokens` (as OpenAI and the AI SDK count them) and are charged at the
 * cached price.
 */
export function costMicros(price: PriceMicros, usage: Usage): number {
  const cached = BigInt(Math.min(usage.cachedTokens ?? 0, usage.inputTokens));
  const fresh = BigInt(usage.inputTokens) - cached;
  const numerator =
    fresh * BigInt(price.input) + cached * BigInt(price.cachedInput ?? price.input) + BigInt(usage.outputTokens) * BigInt(price.output);
  return Number((numerator + 500_000n) / 1_000_000n);
}

/** 1e-7 prints as "1e-7"; fixed notation keeps the decimal parser simple. */
function numberText(n: number): string {
  if (!Number.isFinite(n) || n < 0) return String(n);
  const fixed = n.toFixed(6).replace(/\.?0+$/, '');
  if (Number(fixed) !== n) return n.toFixed(7); // more than six decimals: let the parser refuse it
  return fixed;
}
