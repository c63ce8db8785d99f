import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../shared/errors.js';
import { Tokenizer, checkTokenizer } from '../../shared/models/tokenizer.js';

const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'red', 'shoe', '##s', 'un', '##tie', '##d', 'café', '2026'];

describe('WordPiece tokenizer', () => {
  const t = new Tokenizer({ type: 'wordpiece', vocab, maxLength: 8, cls: '[CLS]', sep: '[SEP]' });

  it('lowercases, splits words and punctuation, and takes the longest pieces first', () => {
    expect(t.pieces('Red Shoes!')).toEqual(['red', 'shoe', '##s', '[UNK]']);
    expect(t.pieces('untied')).toEqual(['un', '##tie', '##d']);
    // NFC: a decomposed é is the vocabulary's composed one; digits are words too.
    expect(t.pieces('cafe\u0301 2026')).toEqual(['café', '2026']);
    // A word without a full split is one unknown token, not a partial one.
    expect(t.pieces('unx')).toEqual(['[UNK]']);
  });

  it('frames, pads and cuts to maxLength, with the attention mask on tokens only', () => {
    const { ids, mask } = t.encode('red shoes');
    expect(Array.from(ids, Number)).toEqual([2, 4, 5, 6, 3, 0, 0, 0]);
    expect(Array.from(mask, Number)).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    const long = t.encode('red '.repeat(20));
    expect(Array.from(long.ids, Number)).toEqual([2, 4, 4, 4, 4, 4, 4, 3]);
    expect(Array.from(long.mask, Number)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('refuses definitions that cannot work, naming the field', () => {
    const bad: Array<[Parameters<typeof checkTokenizer>[0], string]> = [
      [{ type: 'wordpiece', vocab: ['[PAD]', '[UNK]', 'a', 'a'], maxLength: 4 }, 'tokenizer.vocab[3]'],
      [{ type: 'wordpiece', vocab: ['[PAD]', 'a'], maxLength: 4 }, 'tokenizer.unknown'],
      [{ type: 'wordpiece', vocab: ['[PAD]', '[UNK]'], maxLength: 4, cls: '<s>' }, 'tokenizer.cls'],
    ];
    for (const [spec, field] of bad) {
      let caught: unknown;
      try {
        checkTokenizer(spec);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect((caught as ValidationError).field).toBe(field);
    }
  });
});
