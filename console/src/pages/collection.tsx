/** Collection detail: index versions as a lineage graph, candidate lines, promotion behind the quality gate. */
import { useState } from 'preact/hooks';
import { ShoalApiError } from '../../../clients/typescript/src/index.js';
import type { LineView, Manifest, VectorInput } from '../../../clients/typescript/src/index.js';
import { fmtBytes, fmtNum, fmtTime, useClient, useLoad } from '../api.js';
import { href } from '../router.js';
import { ErrorBox, Json, KeyValues, Page } from '../ui.js';

const COL_W = 150;
const ROW_H = 44;
const PAD = 28;

/** Lines as columns (the serving line first), versions as rows (newest on top), parent → child edges. */
export function layoutLineage(versions: Manifest[], serving: string) {
  const lines: string[] = [serving];
  for (const v of [...versions].reverse()) {
    const line = v.line ?? 'main';
    if (!lines.includes(line)) lines.push(line);
  }
  const sorted = [...versions].sort((a, b) => b.version - a.version);
  const pos = new Map<number, { x: number; y: number }>();
  sorted.forEach((v, i) =>
    pos.set(v.version, { x: PAD + lines.indexOf(v.line ?? 'main') * COL_W, y: PAD + i * ROW_H }),
  );
  const edges = sorted.flatMap((v) => {
    const from = pos.get(v.parent);
    const to = pos.get(v.version);
    return from && to && v.parent !== v.version ? [{ from, to, key: `${v.parent}-${v.version}` }] : [];
  });
  return { lines, sorted, pos, edges, width: PAD * 2 + lines.length * COL_W, height: PAD * 2 + sorted.length * ROW_H };
}

/** A vertical S-curve from parent to child. */
function edgePath(a: { x: number; y: number }, b: { x: number; y: number }): string {
  const mid = (a.y + b.y) / 2;
  return `M${a.x},${a.y} C${a.x},${mid} ${b.x},${mid} ${b.x},${b.y}`;
}

function Lineage({
  versions,
  serving,
  selected,
  onSelect,
}: {
  versions: Manifest[];
  serving: string;
  selected: number | undefined;
  onSelect: (v: number) => void;
}) {
  const { lines, sorted, pos, edges, width, height } = layoutLineage(versions, serving);
  return (
    <figure class="lineage">
      <svg
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="group"
        aria-label={`Lineage of ${sorted.length} index versions on ${lines.length} lines`}
      >
        {lines.map((line, i) => (
          <text key={line} x={PAD + i * COL_W - 6} y={14} class="lane">
            {line}
            {line === serving ? ' (serving)' : ''}
          </text>
        ))}
        {edges.map((e) => (
          <path key={e.key} class="edge" d={edgePath(e.from, e.to)} />
        ))}
        {sorted.map((v) => {
          const p = pos.get(v.version) as { x: number; y: number };
          const label = `v${v.version} ${v.stats?.kind ?? ''}`;
          return (
            <g
              key={v.version}
              class={`node kind-${v.stats?.kind ?? 'unknown'}${selected === v.version ? ' selected' : ''}`}
              // Lower case: Preact sets SVG attributes verbatim, and SVG ignores `tabIndex`.
              tabindex={0}
              role="button"
              aria-pressed={selected === v.version}
              aria-label={`version ${v.version}, ${v.stats?.kind}, parent ${v.parent}, watermark ${v.watermark}`}
              onClick={() => onSelect(v.version)}
              onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), onSelect(v.version))}
            >
              <circle cx={p.x} cy={p.y} r={9} />
              <text x={p.x + 14} y={p.y + 4}>
                {label}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption class="muted">
        Each dot is an index version; an edge joins it to its parent. Select one for details.
      </figcaption>
    </figure>
  );
}

function VersionDetails({ name, manifest, onChanged }: { name: string; manifest: Manifest; onChanged: () => void }) {
  const client = useClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const e = manifest.evaluation;
  return (
    <div class="card" aria-label={`Version ${manifest.version}`}>
      <h2>Version {manifest.version}</h2>
      <KeyValues
        items={[
          ['line', manifest.line ?? 'main'],
          ['parent', manifest.parent],
          ['kind', manifest.stats?.kind],
          ['watermark', fmtNum(manifest.watermark)],
          ['model', manifest.model ? `${manifest.model.name} v${manifest.model.version}` : '—'],
          ['engine', manifest.engine],
          ['params', <Json value={manifest.params} />],
          ['shards', manifest.shards.length],
          ['rows / live', `${fmtNum(manifest.stats?.rows)} / ${fmtNum(manifest.stats?.liveRows)}`],
          ['bytes', fmtBytes(manifest.stats?.bytes)],
          ['build time', `${fmtNum(manifest.stats?.buildMs)} ms`],
          ['created', fmtTime(manifest.createdAt)],
          [
            'evaluation',
            e
              ? `recall@${e.k} ${e.recall.toFixed(3)} (ef ${e.ef ?? 'default'}, p95 ${fmtNum(e.latencyMs.p95, 1)} ms)`
              : '—',
          ],
        ]}
      />
      <button
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await client.collection(name).evaluate(manifest.version, {});
            onChanged();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        Evaluate recall
      </button>{' '}
      <a class="button-link" href={href('tuning', name, manifest.version)}>
        Tune…
      </a>
      <ErrorBox error={error} />
    </div>
  );
}

function GateRefusal({ error }: { error: ShoalApiError }) {
  const d = (error.details ?? {}) as Record<string, unknown>;
  return (
    <div class="error" role="alert">
      <strong>Quality gate refused the promotion.</strong> {error.message}
      <KeyValues
        items={[
          ['minRecall', String(d.minRecall ?? '—')],
          ['recall', typeof d.recall === 'number' ? d.recall.toFixed(4) : String(d.recall ?? 'not evaluated')],
          ['k', String(d.k ?? '—')],
          ['version', String(d.version ?? '—')],
          ['evaluated', d.evaluated ? 'yes' : 'no'],
        ]}
      />
    </div>
  );
}

function Candidates({ name, onChanged }: { name: string; onChanged: () => void }) {
  const client = useClient();
  const lines = useLoad((c) => c.collection(name).candidates.list(), [name]);
  const [refusal, setRefusal] = useState<{ line: string; error: ShoalApiError } | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function promote(line: string, force: boolean) {
    setError(null);
    setRefusal(null);
    try {
      await client.collection(name).candidates.promote(line, { force, reason: 'console' });
      lines.reload();
      onChanged();
    } catch (err) {
      if (err instanceof ShoalApiError && err.code === 'QUALITY_GATE') setRefusal({ line, error: err });
      else setError(err);
    }
  }
  async function evaluate(line: LineView) {
    if (!line.head) return;
    setError(null);
    try {
      await client.collection(name).evaluate(line.head.version, {});
      lines.reload();
      onChanged();
    } catch (err) {
      setError(err);
    }
  }

  const all = lines.data ? [lines.data.serving, ...lines.data.candidates] : [];
  return (
    <div class="card">
      <h2>Index lines</h2>
      <ErrorBox error={lines.error ?? error} />
      <table class="data">
        <thead>
          <tr>
            <th scope="col">line</th>
            <th scope="col">index</th>
            <th scope="col" class="num">
              head
            </th>
            <th scope="col" class="num">
              lag (writes)
            </th>
            <th scope="col">evaluation</th>
            <th scope="col">actions</th>
          </tr>
        </thead>
        <tbody>
          {all.map((l) => (
            <tr key={l.line}>
              <th scope="row">
                {l.line} {l.serving ? <span class="badge">serving</span> : null}
              </th>
              <td>
                <Json value={l.index} />
              </td>
              <td class="num">{l.head ? `v${l.head.version}` : l.serving ? 'none yet' : 'building'}</td>
              <td class="num">{fmtNum(l.lagSeq)}</td>
              <td>
                {l.evaluation
                  ? `recall@${l.evaluation.k} ${l.evaluation.recall.toFixed(3)} (v${l.evaluation.version})`
                  : 'not evaluated'}
              </td>
              <td>
                {l.head ? <button onClick={() => void evaluate(l)}>Evaluate</button> : null}{' '}
                {l.serving ? null : <button onClick={() => void promote(l.line, false)}>Promote {l.line}</button>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {refusal ? (
        <>
          <GateRefusal error={refusal.error} />
          <button class="danger" onClick={() => void promote(refusal.line, true)}>
            Promote {refusal.line} anyway (force)
          </button>
        </>
      ) : null}
      <StartCandidate name={name} onStarted={lines.reload} />
      {lines.data?.promotions.length ? (
        <>
          <h3>Promotions</h3>
          <ul class="plain">
            {lines.data.promotions.map((p) => (
              <li key={p.rev}>
                {fmtTime(p.at)} — {p.from} → {p.to} (v{p.version}) by {p.by}
                {p.reason ? ` — ${p.reason}` : ''}
                {p.forced ? ' (forced)' : ''}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </div>
  );
}

/** Vectors as a JSON array or one JSON object a line: `{"id", "values", "metadata"?}`. */
export function parseVectors(text: string): VectorInput[] {
  const trimmed = text.trim();
  if (!trimmed) throw new Error('no vectors given');
  const items: unknown[] = trimmed.startsWith('[')
    ? (JSON.parse(trimmed) as unknown[])
    : trimmed.split(/\n+/).map((line, i) => {
        try {
          return JSON.parse(line) as unknown;
        } catch (err) {
          throw new Error(`line ${i + 1}: ${(err as Error).message}`);
        }
      });
  return items as VectorInput[];
}

function UpsertForm({ name, onDone }: { name: string; onDone: () => void }) {
  const client = useClient();
  const [text, setText] = useState('');
  const [status, setStatus] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="card"
      aria-label="Upsert vectors"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        setStatus('');
        try {
          // The API checks every row (dimension, ids, metadata limits) and names the offending field. Batches
          // of 1 000 rows by hand: the SDK's upsertAll measures bodies with Node's Buffer, absent in browsers.
          const vectors = parseVectors(text);
          let upserted = 0;
          let batches = 0;
          for (let i = 0; i < vectors.length; i += 1000, batches++) {
            upserted += (await client.collection(name).upsert(vectors.slice(i, i + 1000))).upserted;
          }
          setStatus(`upserted ${upserted} vectors in ${batches} request${batches === 1 ? '' : 's'}`);
          setText('');
          onDone();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2>Upsert vectors</h2>
      <label>
        Vectors (a JSON array, or one JSON object a line)
        <textarea
          class="mono"
          rows={4}
          value={text}
          placeholder='{"id": "a", "values": [0.1, 0.2, 0.3], "metadata": {"lang": "en"}}'
          onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
        />
      </label>
      <button type="submit" disabled={busy || !text.trim()}>
        Upsert
      </button>{' '}
      <span role="status">{status}</span>
      <ErrorBox error={error} />
    </form>
  );
}

function StartCandidate({ name, onStarted }: { name: string; onStarted: () => void }) {
  const client = useClient();
  const [m, setM] = useState('32');
  const [efc, setEfc] = useState('200');
  const [error, setError] = useState<unknown>(null);
  return (
    <form
      class="row-form"
      aria-label="Start a candidate line"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          await client.collection(name).index({ index: { m: Number(m), efConstruction: Number(efc) } });
          onStarted();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <label>
        m
        <input
          type="number"
          min={2}
          max={128}
          value={m}
          onInput={(e) => setM((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <label>
        efConstruction
        <input
          type="number"
          min={8}
          max={4096}
          value={efc}
          onInput={(e) => setEfc((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <button type="submit">Start candidate line</button>
      <ErrorBox error={error} />
    </form>
  );
}

const DRIFT_HOURS = 24;

/**
 * Embedding drift (docs/drift.md): the status, the reference it compares with, and the hour windows of
 * queries and upserts with their PSI — what the `EmbeddingDriftPSI` alarm fires on. Polls every 30 s.
 */
function Drift({ name }: { name: string }) {
  const client = useClient();
  const report = useLoad((c) => c.collection(name).drift({ hours: DRIFT_HOURS }), [name], { pollMs: 30_000 });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const d = report.data;
  const windows = [...(d?.windows ?? [])].sort((a, b) => (a.start < b.start ? 1 : a.start > b.start ? -1 : 0));
  return (
    <div class="card scroll-x" aria-label="Embedding drift">
      <h2>Embedding drift {d ? <span class={`badge drift-${d.status}`}>{d.status}</span> : null}</h2>
      <ErrorBox error={report.error ?? error} />
      {d ? (
        <KeyValues
          items={[
            ['model', d.model ? `${d.model.name} v${d.model.version}` : 'none'],
            [
              'reference',
              d.reference ? `${fmtNum(d.reference.rows)} rows, ${fmtTime(d.reference.createdAt)}` : 'none yet',
            ],
            ['unreferenced vectors', fmtNum(d.unreferenced)],
          ]}
        />
      ) : (
        <p class="muted">Loading…</p>
      )}
      {windows.length ? (
        <table>
          <caption class="muted">
            Hour windows of the last {DRIFT_HOURS} h, newest first. PSI above 0.1 warns, above 0.25 alerts.
          </caption>
          <thead>
            <tr>
              <th>hour</th>
              <th>kind</th>
              <th>vectors</th>
              <th>PSI mean / max</th>
              <th>norm PSI</th>
              <th>centroid PSI</th>
              <th>mean shift</th>
              <th>status</th>
            </tr>
          </thead>
          <tbody>
            {windows.map((w) => (
              <tr key={`${w.kind}-${w.start}`}>
                <td>{fmtTime(w.start)}</td>
                <td>{w.kind}</td>
                <td>{fmtNum(w.count)}</td>
                <td>
                  {w.psi.toFixed(3)} / {w.psiMax.toFixed(3)}
                </td>
                <td>{w.normPsi.toFixed(3)}</td>
                <td>{w.centroidPsi.toFixed(3)}</td>
                <td>{w.meanShift.toFixed(2)}</td>
                <td>
                  <span class={`badge drift-${w.status}`}>{w.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : d ? (
        <p class="muted">No window yet: searches and upserts fill the current hour.</p>
      ) : null}
      <button
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            // After an intended change of the data: the current rows become what "no drift" means.
            await client.collection(name).resetDriftReference();
            report.reload();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        Reset reference to the current rows
      </button>
    </div>
  );
}

export function CollectionDetail({ name }: { name: string }) {
  const client = useClient();
  const info = useLoad((c) => c.collection(name).info(), [name]);
  const versions = useLoad((c) => c.collection(name).versions(), [name]);
  const [selected, setSelected] = useState<number | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const reloadAll = () => {
    info.reload();
    versions.reload();
  };
  const serving = info.data?.indexLine ?? 'main';
  const chosen = versions.data?.find((v) => v.version === selected) ?? versions.data?.[0];
  const s = info.data?.stats;
  return (
    <Page
      title={`Collection ${name}`}
      actions={
        <div>
          <a class="button-link" href={href('search', name)}>
            Search
          </a>{' '}
          <a class="button-link" href={href('imports', name)}>
            Imports
          </a>{' '}
          <button
            onClick={async () => {
              setError(null);
              try {
                await client.collection(name).index();
                reloadAll();
              } catch (err) {
                setError(err);
              }
            }}
          >
            Build now
          </button>
        </div>
      }
    >
      <ErrorBox error={info.error ?? versions.error ?? error} />
      <KeyValues
        items={[
          ['dimension / metric', info.data ? `${info.data.dimension} / ${info.data.metric}` : '…'],
          ['count', fmtNum(s?.count)],
          ['indexed', fmtNum(s?.indexed)],
          ['pending', fmtNum(s?.pending)],
          ['version', fmtNum(s?.version)],
          ['watermark', fmtNum(s?.watermark)],
          ['minRecall', info.data?.minRecall ?? '—'],
          ['model', info.data?.model ? `${info.data.model.name} v${info.data.model.version}` : '—'],
          [
            'embedding function',
            info.data?.embedding
              ? `${info.data.embedding.model} v${info.data.embedding.version} (${
                  info.data.embedding.text ? 'text' : `${fmtNum(info.data.embedding.inputLength)} values`
                } in)`
              : '—',
          ],
        ]}
      />
      <div class="split">
        <div class="card scroll-x">
          <h2>Index versions</h2>
          {versions.data?.length ? (
            <Lineage versions={versions.data} serving={serving} selected={chosen?.version} onSelect={setSelected} />
          ) : (
            <p class="muted">{versions.data ? 'No index version yet: build one.' : 'Loading…'}</p>
          )}
        </div>
        {chosen ? <VersionDetails name={name} manifest={chosen} onChanged={reloadAll} /> : <div />}
      </div>
      <Candidates name={name} onChanged={reloadAll} />
      <Drift name={name} />
      <UpsertForm name={name} onDone={reloadAll} />
    </Page>
  );
}
