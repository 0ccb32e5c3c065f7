import { createHash } from 'node:crypto';

/** Dimensions of the fake's vectors unless the request asks for fewer. */
export const FAKE_EMBEDDING_DIMS = 256;

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

/**
 * A bag-of-words vector: each word adds to a dimension chosen by its hash, then
 * the vector is normalised. Texts that share words are close (cosine), as with a
 * real model, so search tests can assert rankings; identical texts give identical vectors.
 */
export function fakeEmbedding(text: string, dims = FAKE_EMBEDDING_DIMS): number[] {
  const v = new Array<number>(dims).fill(0);
  for (const w of words(text)) v[createHash('sha256').update(w).digest().readUInt32BE(0) % dims]! += 1;
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** A word's own dense vector: the same for the same word, random-looking otherwise. */
function wordVector(w: string, dims: number): Float64Array {
  let state = createHash('sha256').update(w).digest().readUInt32BE(0) || 1;
  const v = new Float64Array(dims);
  for (let i = 0; i < dims; i++) {
    // xorshift32: fast and deterministic.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    v[i] = (state >>> 0) / 2 ** 31 - 1;
  }
  return v;
}

/**
 * Dense vectors as real models give (every dimension used), still of the
 * bag-of-words kind: the sum of each word's own random vector, normalised.
 * Benchmarks use them (approximate indexes behave on dense vectors as they do
 * in production, not as on the sparse ones above); a model whose name has
 * `dense` in it answers with these.
 */
export function denseEmbedding(text: string, dims = FAKE_EMBEDDING_DIMS): number[] {
  const v = new Float64Array(dims);
  for (const w of words(text)) {
    const wv = wordVector(w, dims);
    for (let i = 0; i < dims; i++) v[i]! += wv[i]!;
  }
  const norm = Math.hypot(...v) || 1;
  return Array.from(v, (x) => x / norm);
}

/** OpenAI's `POST /v1/embeddings` answer for a request body, as `float` or `base64` (little-endian float32, which the official SDK asks for). */
export function embeddingsResponse(body: any) {
  const inputs: string[] = typeof body?.input === 'string' ? [body.input] : body?.input;
  // `…dense-384` names its size, as model names such as text-embedding-3-small imply theirs.
  const dims = body?.dimensions ?? Number(/dense-(\d+)/.exec(String(body?.model))?.[1] ?? FAKE_EMBEDDING_DIMS);
  const tokens = inputs.reduce((n, s) => n + Math.max(1, words(s).length), 0);
  return {
    object: 'list',
    model: body.model,
    data: inputs.map((text, index) => {
      const vector = String(body.model).includes('dense') ? denseEmbedding(text, dims) : fakeEmbedding(text, dims);
      const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
      return { object: 'embedding', index, embedding };
    }),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
