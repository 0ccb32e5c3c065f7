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

/** OpenAI's `POST /v1/embeddings` answer for a request body, as `float` or `base64` (little-endian float32, which the official SDK asks for). */
export function embeddingsResponse(body: any) {
  const inputs: string[] = typeof body?.input === 'string' ? [body.input] : body?.input;
  const dims = body?.dimensions ?? FAKE_EMBEDDING_DIMS;
  const tokens = inputs.reduce((n, s) => n + Math.max(1, words(s).length), 0);
  return {
    object: 'list',
    model: body.model,
    data: inputs.map((text, index) => {
      const vector = fakeEmbedding(text, dims);
      const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
      return { object: 'embedding', index, embedding };
    }),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
