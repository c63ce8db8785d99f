/**
 * Text inputs for embedding functions (docs/models.md): a model version that ships a tokenizer definition
 * in the registry takes strings as raw inputs. The definition is data — a WordPiece vocabulary and a few
 * settings, the scheme of BERT-family encoders — so Shoal tokenizes without running user code and the same
 * text always gives the same ids.
 *
 * Tokenizing: NFC, optional lowercasing, split into words (runs of letters or digits, single other
 * non-space characters), each word split greedily into the longest vocabulary pieces (continuations
 * prefixed, `##` by default; a word with no split is the unknown token), framed by the optional CLS/SEP
 * tokens, cut or padded to `maxLength`. The attention mask is 1 on tokens, 0 on padding.
 */
import { ValidationError } from '../errors.js';
import { LIMITS } from '../validation.js';
import type { TokenizerSpec } from '../service-types.js';

export type { TokenizerSpec };

/** Vocabulary entries a definition may carry (a BERT base vocabulary has 30,522). */
export const MAX_VOCAB = 50_000;
/** Serialized size of a definition: it is stored in the model version's catalog item (400 KB in all). */
export const MAX_TOKENIZER_BYTES = 300 * 1024;
/** Characters of one text input (`LIMITS.maxTextChars`, shared with the request schemas). */
export const MAX_TEXT_CHARS = LIMITS.maxTextChars;

/** Checks a definition (field `tokenizer…`); returns it with defaults filled in. */
export function checkTokenizer(spec: TokenizerSpec): Required<Omit<TokenizerSpec, 'cls' | 'sep'>> & TokenizerSpec {
  const field = 'tokenizer';
  if (Buffer.byteLength(JSON.stringify(spec)) > MAX_TOKENIZER_BYTES) {
    throw new ValidationError(`a tokenizer definition is limited to ${MAX_TOKENIZER_BYTES} bytes of JSON`, { field });
  }
  if (spec.vocab.length < 2 || spec.vocab.length > MAX_VOCAB) {
    throw new ValidationError(`must have 2–${MAX_VOCAB} entries`, { field: `${field}.vocab` });
  }
  const seen = new Set<string>();
  spec.vocab.forEach((token, i) => {
    if (seen.has(token))
      throw new ValidationError(`repeats ${JSON.stringify(token)}`, { field: `${field}.vocab[${i}]` });
    seen.add(token);
  });
  const full = {
    lowercase: true,
    unknown: '[UNK]',
    pad: '[PAD]',
    continuation: '##',
    ...spec,
  };
  for (const key of ['unknown', 'pad', 'cls', 'sep'] as const) {
    const token = full[key];
    if (token !== undefined && !seen.has(token)) {
      throw new ValidationError(`${JSON.stringify(token)} is not in the vocabulary`, { field: `${field}.${key}` });
    }
  }
  return full;
}

const WORDS = /[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu;

export class Tokenizer {
  private readonly ids: Map<string, number>;
  private readonly spec: ReturnType<typeof checkTokenizer>;

  constructor(spec: TokenizerSpec) {
    this.spec = checkTokenizer(spec);
    this.ids = new Map(this.spec.vocab.map((t, i) => [t, i]));
  }

  get maxLength(): number {
    return this.spec.maxLength;
  }

  private id(token: string): number {
    return this.ids.get(token)!;
  }

  /** The pieces of one text, before framing and cutting (exposed for tests and docs). */
  pieces(text: string): string[] {
    let t = text.normalize('NFC');
    if (this.spec.lowercase) t = t.toLowerCase();
    const out: string[] = [];
    for (const word of t.match(WORDS) ?? []) {
      const parts: string[] = [];
      let start = 0;
      while (start < word.length) {
        let end = word.length;
        let found: string | undefined;
        while (end > start) {
          const piece = (start > 0 ? this.spec.continuation : '') + word.slice(start, end);
          if (this.ids.has(piece)) {
            found = piece;
            break;
          }
          end--;
        }
        if (found === undefined) {
          parts.length = 0;
          parts.push(this.spec.unknown);
          break;
        }
        parts.push(found);
        start = end;
      }
      out.push(...parts);
    }
    return out;
  }

  /** Token ids and attention mask, `maxLength` each (int64, as encoders take them). */
  encode(text: string): { ids: BigInt64Array; mask: BigInt64Array } {
    const { cls, sep, maxLength } = this.spec;
    const room = maxLength - (cls !== undefined ? 1 : 0) - (sep !== undefined ? 1 : 0);
    const tokens = [
      ...(cls !== undefined ? [cls] : []),
      ...this.pieces(text).slice(0, Math.max(0, room)),
      ...(sep !== undefined ? [sep] : []),
    ].slice(0, maxLength);
    const ids = new BigInt64Array(maxLength).fill(BigInt(this.id(this.spec.pad)));
    const mask = new BigInt64Array(maxLength);
    tokens.forEach((token, i) => {
      ids[i] = BigInt(this.id(token));
      mask[i] = 1n;
    });
    return { ids, mask };
  }
}
