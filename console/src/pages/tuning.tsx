/** Evaluation and tuning: recall against ef (and nprobe) from `tune`, with the point it chose. */
import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { Evaluation } from '../../../clients/typescript/src/index.js';
import { fmtNum, useClient, useLoad } from '../api.js';
import { Chart, COLORS, referenceLines } from '../chart.js';
import { href, navigate } from '../router.js';
import { CollectionPicker, ErrorBox, Page } from '../ui.js';

type Tuning = NonNullable<Evaluation['tuning']>;
const PALETTE = ['#2f6fdf', '#d9622b', '#1a9b5b', '#8b5cf6', '#c026d3', '#0891b2', '#ca8a04', '#64748b'];

/** One series per nprobe (a single one when unpartitioned), ef on a log₂ axis, the chosen point ringed. */
export function tuningChart(t: Tuning) {
  const efs = [...new Set(t.table.map((r) => r.ef))].sort((a, b) => a - b);
  const probes = [...new Set(t.table.map((r) => r.nprobe ?? 0))].sort((a, b) => a - b);
  const series: uPlot.Series[] = [{ label: 'ef' }];
  const data: Array<Array<number | null>> = [efs];
  probes.forEach((np, i) => {
    series.push({ label: np ? `recall, nprobe ${np}` : 'recall', stroke: PALETTE[i % PALETTE.length], width: 2 });
    data.push(efs.map((ef) => t.table.find((r) => r.ef === ef && (r.nprobe ?? 0) === np)?.recall ?? null));
  });
  series.push({
    label: `chosen (ef ${t.chosenEf ?? '—'}${t.chosenNprobe ? `, nprobe ${t.chosenNprobe}` : ''})`,
    stroke: COLORS.accent,
    fill: COLORS.accent,
    paths: () => null,
    points: { size: 14, width: 3 },
  });
  data.push(
    efs.map((ef) =>
      ef === t.chosenEf
        ? (t.table.find((r) => r.ef === ef && (t.chosenNprobe === undefined || r.nprobe === t.chosenNprobe))?.recall ??
          null)
        : null,
    ),
  );
  const low = Math.min(t.targetRecall, ...t.table.map((r) => r.recall));
  const options: Omit<uPlot.Options, 'width' | 'height'> = {
    scales: { x: { time: false, distr: 3, log: 2 }, y: { range: [Math.max(0, low - 0.05), 1.005] } },
    axes: [{ label: 'ef (log₂)' }, { label: `recall@${t.k}`, values: (_u, s) => s.map((v) => v.toFixed(2)), size: 56 }],
    series,
    // The target as a line across the plot even when the ladder stopped at its first rung (a single ef).
    hooks: {
      draw: [referenceLines([{ value: t.targetRecall, label: `target ${t.targetRecall}`, color: COLORS.neutral }])],
    },
  };
  return { data: data as uPlot.AlignedData, options, key: JSON.stringify(t.table) + t.chosenEf + t.chosenNprobe };
}

function TuningChart({ tuning }: { tuning: Tuning }) {
  const built = useMemo(() => tuningChart(tuning), [tuning]);
  return (
    <>
      <Chart
        label={`Recall against ef; chosen ef ${tuning.chosenEf}`}
        options={built.options}
        data={built.data}
        shapeKey={built.key}
      />
      <table class="data">
        <caption>Tuning table (target recall {tuning.targetRecall})</caption>
        <thead>
          <tr>
            {tuning.table.some((r) => r.nprobe !== undefined) ? <th scope="col">nprobe</th> : null}
            <th scope="col" class="num">
              ef
            </th>
            <th scope="col" class="num">
              recall
            </th>
            <th scope="col" class="num">
              p50 ms
            </th>
            <th scope="col" class="num">
              p95 ms
            </th>
          </tr>
        </thead>
        <tbody>
          {tuning.table.map((r) => {
            const chosen =
              r.ef === tuning.chosenEf && (tuning.chosenNprobe === undefined || r.nprobe === tuning.chosenNprobe);
            return (
              <tr
                key={`${r.nprobe}-${r.ef}`}
                class={chosen ? 'selected' : ''}
                aria-current={chosen ? 'true' : undefined}
              >
                {r.nprobe !== undefined ? <td>{r.nprobe}</td> : null}
                <td class="num">
                  {r.ef}
                  {chosen ? ' ✓ chosen' : ''}
                </td>
                <td class="num">{r.recall.toFixed(4)}</td>
                <td class="num">{fmtNum(r.p50, 2)}</td>
                <td class="num">{fmtNum(r.p95, 2)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

export function TuningPage({ collection, version }: { collection?: string; version?: number }) {
  return (
    <Page title="Evaluation and tuning">
      <CollectionPicker base="tuning" value={collection} />
      {collection ? <Tuner key={collection} name={collection} version={version} /> : null}
    </Page>
  );
}

function Tuner({ name, version }: { name: string; version?: number }) {
  const client = useClient();
  const versions = useLoad((c) => c.collection(name).versions(), [name]);
  const [target, setTarget] = useState('0.95');
  const [k, setK] = useState('10');
  const [result, setResult] = useState<Evaluation | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const chosen = version ?? versions.data?.[0]?.version;
  const manifest = versions.data?.find((v) => v.version === chosen);
  const tuning = (result?.version === chosen ? result?.tuning : undefined) ?? manifest?.evaluation?.tuning;
  return (
    <>
      <form
        class="card row-form"
        aria-label="Tune a version"
        onSubmit={async (e) => {
          e.preventDefault();
          if (chosen === undefined) return;
          setBusy(true);
          setError(null);
          try {
            setResult(await client.collection(name).tune(chosen, { targetRecall: Number(target), k: Number(k) }));
            versions.reload();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label>
          Version
          <select
            value={chosen === undefined ? '' : String(chosen)}
            onChange={(e) => navigate(href('tuning', name, (e.currentTarget as HTMLSelectElement).value))}
          >
            {versions.data?.map((v) => (
              <option key={v.version} value={String(v.version)}>
                v{v.version} {v.line ? `(${v.line})` : ''} {v.stats?.kind}
              </option>
            ))}
          </select>
        </label>
        <label>
          Target recall
          <input
            type="number"
            step="any"
            min={0}
            max={1}
            value={target}
            onInput={(e) => setTarget((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
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
        <button type="submit" disabled={busy || chosen === undefined}>
          {busy ? 'Tuning…' : 'Run tune'}
        </button>
      </form>
      <ErrorBox error={versions.error ?? error} />
      {versions.data && !versions.data.length ? <p class="muted">No index version yet: build one first.</p> : null}
      <div class="card">
        {tuning ? (
          <TuningChart tuning={tuning} />
        ) : (
          <p class="muted">
            {manifest?.evaluation
              ? `Evaluated: recall ${manifest.evaluation.recall.toFixed(3)}; not tuned yet.`
              : 'Not tuned yet: run tune.'}
          </p>
        )}
      </div>
    </>
  );
}
