import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { machineInfo, parseArgs, record, usage, UsageError, type BenchSpec } from '../../bench/cli.js';

const spec: BenchSpec = {
  name: 'demo',
  summary: 'A demo bench.',
  quick: 'small sizes',
  options: [
    { flag: '--rows', arg: 'n', help: 'rows per format' },
    { flag: '--local', help: 'through the emulators too' },
  ],
};

describe('bench CLI arguments', () => {
  it('parses the common switches and bench options', () => {
    const a = parseArgs(spec, ['--quick', '--json', '--rows', '200', '--local', '--record']);
    expect(a).toMatchObject({ quick: true, json: true, record: true, help: false });
    expect(a.options.get('--rows')).toBe('200');
    expect(a.options.get('--local')).toBe(true);
    // The reproducible command leaves out --json/--record (they change the output, not the numbers).
    expect(a.measured).toEqual(['--quick', '--rows', '200', '--local']);
    expect(parseArgs(spec, ['--rows=300']).options.get('--rows')).toBe('300');
    expect(parseArgs(spec, [])).toMatchObject({ quick: false, json: false, record: false, measured: [] });
  });

  it('rejects unknown options, missing values and values on switches', () => {
    expect(() => parseArgs(spec, ['--jsn'])).toThrow(UsageError);
    expect(() => parseArgs(spec, ['quick'])).toThrow(/unknown option "quick"/);
    expect(() => parseArgs(spec, ['--rows'])).toThrow(/--rows needs a value <n>/);
    expect(() => parseArgs(spec, ['--rows', '--json'])).toThrow(/needs a value/);
    expect(() => parseArgs(spec, ['--json=yes'])).toThrow(/takes no value/);
  });

  it('documents every option in --help', () => {
    const text = usage(spec);
    for (const flag of ['--quick', '--json', '--record', '--help', '--rows <n>', '--local'])
      expect(text).toContain(flag);
    expect(text).toContain('npm run -s bench:demo');
    expect(text).toContain('small sizes');
  });
});

describe('record', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes <name>-<date>[-variant][-quick].md and .json', () => {
    const doc = {
      bench: 'demo',
      date: '2026-11-29T10:00:00.000Z',
      command: 'npm run bench:demo -- --quick',
      quick: true,
      machine: machineInfo(),
      parameters: { rows: 5 },
      rows: [{ a: 1 }],
    };
    const file = record('demo', '# Demo', doc, { dir });
    expect(path.basename(file)).toBe('demo-2026-11-29-quick.md');
    record('demo', '# Demo', { ...doc, quick: false }, { dir, variant: '20000' });
    expect(readdirSync(dir).sort()).toEqual([
      'demo-2026-11-29-20000.json',
      'demo-2026-11-29-20000.md',
      'demo-2026-11-29-quick.json',
      'demo-2026-11-29-quick.md',
    ]);
    expect(readFileSync(file, 'utf8')).toBe('# Demo\n');
    expect(JSON.parse(readFileSync(path.join(dir, 'demo-2026-11-29-quick.json'), 'utf8'))).toEqual(doc);
  });
});
