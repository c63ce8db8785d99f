/** Experiments: per-arm traffic, latency, overlap and rates with 95 % intervals, the sequential verdict. */
import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { ArmResult, ExperimentResults, Proportion, RateTest } from '../../../clients/typescript/src/index.js';
import { fmtNum, fmtTime, useClient, useLoad } from '../api.js';
import { Chart, COLORS, intervalBars, paddedRange, referenceLines } from '../chart.js';
import { href } from '../router.js';
import { ErrorBox, KeyValues, Page } from '../ui.js';
import { targetText } from './aliases.js';

interface Look {
  t: number;
  click: number | null;
  convert: number | null;
}

/**
 * The API gives the sequential test's p-value as of now; its history is the looks this tab has made,
 * kept per experiment in sessionStorage (the mSPRT p-value is valid at every look).
 */
function recordLook(results: ExperimentResults): Look[] {
  const item = `shoal.console.looks.${results.experiment.id}`;
  let looks: Look[] = [];
  try {
    looks = JSON.parse(sessionStorage.getItem(item) ?? '[]') as Look[];
  } catch {
    looks = [];
  }
  const look = {
    t: Date.now() / 1000,
    click: results.tests.click?.sequential.p ?? null,
    convert: results.tests.convert?.sequential.p ?? null,
  };
  const last = looks[looks.length - 1];
  if (!last || last.click !== look.click || last.convert !== look.convert || look.t - last.t > 60) looks.push(look);
  looks = looks.slice(-500);
  sessionStorage.setItem(item, JSON.stringify(looks));
  return looks;
}

function rate(p: Proportion): string {
  if (p.rate === null) return '—';
  const ci = p.ci95 ? ` [${(p.ci95[0] * 100).toFixed(1)}, ${(p.ci95[1] * 100).toFixed(1)}]` : '';
  return `${(p.rate * 100).toFixed(1)} %${ci}`;
}

function ArmsTable({ arms }: { arms: ExperimentResults['arms'] }) {
  const rows: Array<[string, (a: ArmResult) => string]> = [
    ['target', (a) => targetText(a.target)],
    ['requests', (a) => fmtNum(a.requests)],
    ['errors', (a) => `${fmtNum(a.errors)} (${a.errorRate === null ? '—' : (a.errorRate * 100).toFixed(1) + ' %'})`],
    ['latency p50', (a) => `${fmtNum(a.latencyMs.p50, 1)} ms`],
    ['latency p95', (a) => `${fmtNum(a.latencyMs.p95, 1)} ms`],
    [
      'overlap@k',
      (a) => (a.overlapAtK.mean === null ? '—' : `${a.overlapAtK.mean.toFixed(3)} (${a.overlapAtK.samples})`),
    ],
    ['clicks', (a) => fmtNum(a.clicks)],
    ['CTR [95 % CI]', (a) => rate(a.clickRate)],
    ['conversions', (a) => fmtNum(a.converts)],
    ['conversion [95 % CI]', (a) => rate(a.convertRate)],
  ];
  return (
    <table class="data">
      <caption>Arms</caption>
      <thead>
        <tr>
          <th scope="col">metric</th>
          <th scope="col">champion</th>
          <th scope="col">challenger</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([label, f]) => (
          <tr key={label}>
            <th scope="row">{label}</th>
            <td>{f(arms.champion)}</td>
            <td>{f(arms.challenger)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Rates of both arms, clicks on the left and conversions on the right, each with its Wilson interval. */
function RatesChart({ results }: { results: ExperimentResults }) {
  const { champion, challenger } = results.arms;
  const built = useMemo(() => {
    const r = (p: Proportion) => p.rate;
    const data: uPlot.AlignedData = [
      [0, 1, 3, 4],
      [r(champion.clickRate), null, r(champion.convertRate), null],
      [null, r(challenger.clickRate), null, r(challenger.convertRate)],
    ];
    const intervals = [
      [champion.clickRate.ci95, null, champion.convertRate.ci95, null],
      [null, challenger.clickRate.ci95, null, challenger.convertRate.ci95],
    ];
    const top = Math.max(0.05, ...intervals.flat().map((iv) => (iv ? iv[1] : 0))) * 1.1;
    const options: Omit<uPlot.Options, 'width' | 'height'> = {
      scales: { x: { time: false, range: [-1, 5] }, y: { range: [0, Math.min(1, top)] } },
      axes: [
        { splits: () => [0.5, 3.5], values: () => ['click-through rate', 'conversion rate'] },
        { values: (_u, splits) => splits.map((v) => `${(v * 100).toFixed(0)} %`), size: 56 },
      ],
      series: [
        { label: 'x' },
        {
          label: 'champion',
          stroke: COLORS.champion,
          fill: COLORS.champion,
          paths: () => null,
          points: { size: 10, fill: COLORS.champion },
        },
        {
          label: 'challenger',
          stroke: COLORS.challenger,
          fill: COLORS.challenger,
          paths: () => null,
          points: { size: 10, fill: COLORS.challenger },
        },
      ],
      cursor: { show: false },
      legend: { live: false },
      hooks: { draw: [intervalBars(intervals, [COLORS.champion, COLORS.challenger], [0, 0])] },
    };
    return { data, options, key: JSON.stringify(data) + JSON.stringify(intervals) };
  }, [results]);
  return (
    <Chart
      label={
        'Click-through and conversion rates with 95 % intervals: ' +
        `champion ${rate(champion.clickRate)} clicks, challenger ${rate(challenger.clickRate)} clicks`
      }
      options={built.options}
      data={built.data}
      shapeKey={built.key}
    />
  );
}

const ALPHA = 0.05;

function PValueChart({ looks }: { looks: Look[] }) {
  const data: uPlot.AlignedData = [looks.map((l) => l.t), looks.map((l) => l.click), looks.map((l) => l.convert)];
  const options: Omit<uPlot.Options, 'width' | 'height'> = {
    // Looks seconds apart (or a single one) would otherwise get a time axis of years.
    scales: { x: { range: paddedRange(60) }, y: { range: [0, 1] } },
    series: [
      {},
      { label: 'p (clicks)', stroke: COLORS.champion, width: 2, points: { show: true } },
      { label: 'p (conversions)', stroke: COLORS.challenger, width: 2, points: { show: true } },
    ],
    cursor: { drag: { x: false, y: false, setScale: false } },
    hooks: { draw: [referenceLines([{ value: ALPHA, label: `α = ${ALPHA}`, color: COLORS.neutral }])] },
  };
  return (
    <Chart
      label={`Sequential test p-value at each of ${looks.length} looks, against α = ${ALPHA}`}
      options={options}
      data={data}
      shapeKey={String(looks.length)}
      height={180}
    />
  );
}

function Verdict({ name, test }: { name: string; test: RateTest | null }) {
  if (!test) return <p class="muted">{name}: no test (shadow mode).</p>;
  return (
    <p class={`verdict verdict-${test.verdict}`}>
      <strong>
        {name}: {test.verdict === 'inconclusive' ? 'inconclusive' : `${test.verdict} wins`}
      </strong>{' '}
      — sequential p = {test.sequential.p.toFixed(4)}, difference{' '}
      {test.difference === null ? '—' : `${(test.difference * 100).toFixed(2)} pts`} (95 % CI{' '}
      {(test.sequential.ci95[0] * 100).toFixed(2)} … {(test.sequential.ci95[1] * 100).toFixed(2)})
      {test.significant ? ', significant' : ''}
    </p>
  );
}

export function ExperimentsPage({ alias }: { alias?: string }) {
  const list = useLoad((c) => c.aliases.list(), []);
  return (
    <Page title="Experiments">
      <ErrorBox error={list.error} />
      <div class="split">
        <nav class="card" aria-label="Aliases with experiments">
          <ul class="plain">
            {list.data?.map((a) => (
              <li key={a.name}>
                <a href={href('experiments', a.name)} aria-current={a.name === alias ? 'page' : undefined}>
                  {a.name}
                </a>{' '}
                {a.experiment ? (
                  <span class="badge">{a.experiment.state}</span>
                ) : (
                  <span class="muted">no running experiment</span>
                )}
              </li>
            ))}
          </ul>
        </nav>
        {alias ? <ExperimentDetail key={alias} alias={alias} /> : <p class="muted">Choose an alias.</p>}
      </div>
    </Page>
  );
}

function ExperimentDetail({ alias }: { alias: string }) {
  const client = useClient();
  const [looks, setLooks] = useState<Look[]>([]);
  const results = useLoad(
    async (c) => {
      const r = await c.experiments.results(alias);
      setLooks(recordLook(r));
      return r;
    },
    [alias],
    { pollMs: (r) => (r.experiment.state === 'running' ? 5000 : undefined) },
  );
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const r = results.data;
  const act = async (what: 'promote' | 'abort') => {
    setError(null);
    try {
      if (what === 'promote') await client.experiments.promote(alias, { reason: reason || undefined });
      else await client.experiments.abort(alias, { reason: reason || undefined });
      results.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="card grow">
      <h2>Experiment on {alias}</h2>
      <ErrorBox error={results.error} />
      {r ? (
        <>
          <KeyValues
            items={[
              ['state', r.experiment.state + (r.experiment.reason ? ` (${r.experiment.reason})` : '')],
              [
                'mode',
                r.experiment.mode === 'split' ? `split, ${r.experiment.weight} % to the challenger` : r.experiment.mode,
              ],
              ['champion', targetText(r.experiment.champion)],
              ['challenger', targetText(r.experiment.challenger)],
              ['started', fmtTime(r.experiment.createdAt)],
              [
                'overlap@k',
                r.overlapAtK.mean === null ? '—' : `${r.overlapAtK.mean.toFixed(3)} over ${r.overlapAtK.samples}`,
              ],
            ]}
          />
          <Verdict name="Clicks" test={r.tests.click} />
          <Verdict name="Conversions" test={r.tests.convert} />
          <RatesChart results={r} />
          <ArmsTable arms={r.arms} />
          <h3>Sequential p-value over time</h3>
          <PValueChart looks={looks} />
          {r.experiment.state === 'running' ? (
            <form class="row-form" aria-label="End the experiment" onSubmit={(e) => e.preventDefault()}>
              <label>
                Reason
                <input value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
              </label>
              <button type="button" onClick={() => void act('promote')}>
                Promote challenger
              </button>
              <button type="button" class="danger" onClick={() => void act('abort')}>
                Abort
              </button>
            </form>
          ) : null}
          <ErrorBox error={error} />
        </>
      ) : null}
    </div>
  );
}
