/** The search playground: a query by an existing id's vector or pasted values, every search option. */
import { useState } from 'preact/hooks';
import { ShoalApiError } from '../../../clients/typescript/src/index.js';
import type { Consistency, SearchResult } from '../../../clients/typescript/src/index.js';
import { fmtNum, useClient, useLoad } from '../api.js';
import { CollectionPicker, ErrorBox, Json, Page } from '../ui.js';

interface Outcome {
  result: SearchResult;
  ms: number;
}

/** The filter syntax error with a caret under its position (the API's `details.position`). */
function FilterError({ filter, error }: { filter: string; error: ShoalApiError }) {
  const position = typeof error.details?.position === 'number' ? error.details.position : -1;
  return (
    <div class="error" role="alert" id="filter-error">
      <div>
        {error.code}: {error.message}
      </div>
      {position >= 0 ? (
        <pre class="caret" aria-label={`error at position ${position}`}>
          {filter}
          {'\n'}
          {' '.repeat(position)}^
        </pre>
      ) : null}
    </div>
  );
}

export function parseValues(text: string): number[] {
  const parts = text
    .replace(/[[\]]/g, ' ')
    .split(/[\s,]+/)
    .filter(Boolean);
  const values = parts.map(Number);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`value ${bad + 1} (${JSON.stringify(parts[bad])}) is not a number`);
  return values;
}

export function SearchPage({ collection, query }: { collection?: string; query: URLSearchParams }) {
  return (
    <Page title="Search playground">
      <CollectionPicker base="search" value={collection} />
      {collection ? <Playground key={collection} name={collection} initialId={query.get('id') ?? ''} /> : null}
    </Page>
  );
}

function Playground({ name, initialId }: { name: string; initialId: string }) {
  const client = useClient();
  const info = useLoad((c) => c.collection(name).info(), [name]);
  const [mode, setMode] = useState<'id' | 'values'>('id');
  const [id, setId] = useState(initialId);
  const [values, setValues] = useState('');
  const [k, setK] = useState('10');
  const [ef, setEf] = useState('');
  const [nprobe, setNprobe] = useState('');
  const [filter, setFilter] = useState('');
  const [consistency, setConsistency] = useState<Consistency>('strong');
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const filterError = error instanceof ShoalApiError && error.code === 'FILTER_SYNTAX_ERROR' ? error : null;

  async function run() {
    setBusy(true);
    setError(null);
    try {
      const handle = client.collection(name);
      let vector: number[];
      if (mode === 'id') {
        const [found] = await handle.get([id]);
        if (!found?.values) throw new Error(`no vector with id ${JSON.stringify(id)} in ${name}`);
        vector = found.values;
      } else {
        vector = parseValues(values);
      }
      const started = performance.now();
      const result = await handle.search({
        vector,
        k: Number(k),
        ...(ef ? { ef: Number(ef) } : {}),
        ...(nprobe ? { nprobe: Number(nprobe) } : {}),
        ...(filter.trim() ? { filter } : {}),
        consistency,
        include: ['metadata'],
      });
      setOutcome({ result, ms: performance.now() - started });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="split">
      <form
        class="card"
        aria-label="Search options"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <p class="muted">
          {info.data
            ? `${info.data.dimension} dimensions, ${info.data.metric}, ${fmtNum(info.data.stats?.count)} vectors`
            : '\u00a0'}
        </p>
        <fieldset>
          <legend>Query vector</legend>
          <label class="inline">
            <input type="radio" name="mode" checked={mode === 'id'} onChange={() => setMode('id')} /> an existing id
          </label>
          <label class="inline">
            <input type="radio" name="mode" checked={mode === 'values'} onChange={() => setMode('values')} /> pasted
            values
          </label>
          {mode === 'id' ? (
            <label>
              Vector id
              <input required value={id} onInput={(e) => setId((e.currentTarget as HTMLInputElement).value)} />
            </label>
          ) : (
            <label>
              Values (comma or space separated)
              <textarea
                required
                rows={3}
                value={values}
                onInput={(e) => setValues((e.currentTarget as HTMLTextAreaElement).value)}
              />
            </label>
          )}
        </fieldset>
        <div class="grid3">
          <label>
            k
            <input
              type="number"
              min={1}
              max={1000}
              value={k}
              onInput={(e) => setK((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          <label>
            ef
            <input
              type="number"
              min={1}
              max={4096}
              placeholder="default"
              value={ef}
              onInput={(e) => setEf((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          <label>
            nprobe
            <input
              type="number"
              min={1}
              max={4096}
              placeholder="default"
              value={nprobe}
              onInput={(e) => setNprobe((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
        </div>
        <label>
          Filter
          <input
            value={filter}
            placeholder='lang == "en" and year >= 2021'
            aria-invalid={filterError ? true : undefined}
            aria-describedby={filterError ? 'filter-error' : undefined}
            onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
            class="mono"
          />
        </label>
        <label>
          Consistency
          <select
            value={consistency}
            onChange={(e) => setConsistency((e.currentTarget as HTMLSelectElement).value as Consistency)}
          >
            <option value="strong">strong (index + unindexed writes)</option>
            <option value="eventual">eventual (index only)</option>
          </select>
        </label>
        <button type="submit" disabled={busy}>
          Search
        </button>
        {filterError ? <FilterError filter={filter} error={filterError} /> : <ErrorBox error={error} />}
      </form>
      <div class="card results" aria-live="polite">
        <h2>Results</h2>
        {outcome ? (
          <>
            <p>
              <strong class="latency">{outcome.ms.toFixed(1)} ms</strong> round trip · version{' '}
              {outcome.result.servedBy.version}
              {outcome.result.servedBy.line ? ` (line ${outcome.result.servedBy.line})` : ''} ·{' '}
              {outcome.result.stats.shardsSearched}/{outcome.result.stats.shardsTotal} shards
              {outcome.result.stats.partitionsTotal
                ? ` · ${fmtNum(outcome.result.stats.partitionsProbed, 1)}/` +
                  `${outcome.result.stats.partitionsTotal} partitions`
                : ''}
            </p>
            <table class="data">
              <caption>{outcome.result.results.length} results</caption>
              <thead>
                <tr>
                  <th scope="col" class="num">
                    #
                  </th>
                  <th scope="col">id</th>
                  <th scope="col" class="num">
                    score
                  </th>
                  <th scope="col">metadata</th>
                </tr>
              </thead>
              <tbody>
                {outcome.result.results.map((hit, i) => (
                  <tr key={hit.id}>
                    <td class="num">{i + 1}</td>
                    <th scope="row">{hit.id}</th>
                    <td class="num">{hit.score.toFixed(4)}</td>
                    <td>
                      <Json value={hit.metadata} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : (
          <p class="muted">Run a search to see its results here.</p>
        )}
      </div>
    </div>
  );
}
