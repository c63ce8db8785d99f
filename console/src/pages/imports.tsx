/** Imports: jobs with a live progress bar and the reject report, paged. */
import { useState } from 'preact/hooks';
import type { ImportJob } from '../../../clients/typescript/src/index.js';
import { TERMINAL_IMPORT_STATES } from '../../../clients/typescript/src/index.js';
import { fmtBytes, fmtNum, fmtTime, useClient, useLoad } from '../api.js';
import { href } from '../router.js';
import { CollectionPicker, ErrorBox, Page, Progress } from '../ui.js';

const live = (j: ImportJob) => !TERMINAL_IMPORT_STATES.includes(j.state);

export function ImportsPage({ collection, jobId }: { collection?: string; jobId?: string }) {
  return (
    <Page title="Imports">
      <CollectionPicker base="imports" value={collection} />
      {collection ? <Jobs key={collection} name={collection} jobId={jobId} /> : null}
    </Page>
  );
}

function Jobs({ name, jobId }: { name: string; jobId?: string }) {
  const jobs = useLoad((c) => c.collection(name).imports.list(), [name], {
    // Every second while a job runs; every 5 s otherwise, so a job started elsewhere shows up.
    pollMs: (list) => (list.some(live) ? 1000 : 5000),
  });
  return (
    <>
      <StartImport name={name} onStarted={jobs.reload} />
      <ErrorBox error={jobs.error} />
      <table class="data">
        <caption>
          {jobs.data ? `${jobs.data.length} import job${jobs.data.length === 1 ? '' : 's'}` : 'Loading…'}
        </caption>
        <thead>
          <tr>
            <th scope="col">job</th>
            <th scope="col">file</th>
            <th scope="col">state</th>
            <th scope="col" class="progress-col">
              progress
            </th>
            <th scope="col" class="num">
              read
            </th>
            <th scope="col" class="num">
              written
            </th>
            <th scope="col" class="num">
              rejected
            </th>
            <th scope="col">created</th>
          </tr>
        </thead>
        <tbody>
          {jobs.data?.map((j) => (
            <tr key={j.jobId} class={j.jobId === jobId ? 'selected' : ''}>
              <th scope="row">
                <a href={href('imports', name, j.jobId)}>{j.jobId.slice(0, 12)}</a>
              </th>
              <td class="mono">
                {j.uri.split('/').pop()} {j.format ? `(${j.format}, ${fmtBytes(j.bytesTotal)})` : ''}
              </td>
              <td>
                {j.state}
                {j.reason ? ` (${j.reason})` : ''}
              </td>
              <td>
                <Progress value={j.percent} label={`import ${j.uri.split('/').pop()}`} />
              </td>
              <td class="num">{fmtNum(j.rowsRead)}</td>
              <td class="num">{fmtNum(j.rowsWritten)}</td>
              <td class="num">{fmtNum(j.rowsRejected)}</td>
              <td>{fmtTime(j.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {jobId ? <Rejects key={jobId} name={name} jobId={jobId} /> : null}
    </>
  );
}

function StartImport({ name, onStarted }: { name: string; onStarted: () => void }) {
  const client = useClient();
  const [uri, setUri] = useState('');
  const [error, setError] = useState<unknown>(null);
  return (
    <form
      class="card row-form"
      aria-label="Start an import"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          await client.collection(name).imports.create({ uri });
          setUri('');
          onStarted();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <label class="grow">
        S3 object to import
        <input
          required
          class="mono"
          placeholder={`s3://<bucket>/imports/${name}/rows.jsonl`}
          value={uri}
          onInput={(e) => setUri((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <button type="submit">Import</button>
      <ErrorBox error={error} />
    </form>
  );
}

function Rejects({ name, jobId }: { name: string; jobId: string }) {
  // Cursors of the pages seen so far: "previous" goes back without the API having to page backwards.
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const [limit, setLimit] = useState(20);
  const page = useLoad(
    (c) => c.collection(name).imports.rejectsPage(jobId, { limit, cursor }),
    [name, jobId, cursor, limit],
  );
  const p = page.data;
  return (
    <div class="card">
      <h2>Rejects of {jobId.slice(0, 12)}</h2>
      <ErrorBox error={page.error} />
      <p>
        {p
          ? `${fmtNum(p.rowsRejected)} rejected, ${fmtNum(p.reported)} in the report · ` + `page ${cursors.length}`
          : '…'}
      </p>
      <table class="data">
        <thead>
          <tr>
            <th scope="col" class="num">
              line / row
            </th>
            <th scope="col">id</th>
            <th scope="col">code</th>
            <th scope="col">reason</th>
          </tr>
        </thead>
        <tbody>
          {p?.rejects.map((r, i) => (
            <tr key={`${r.line ?? r.row}-${i}`}>
              <td class="num">{r.line !== undefined ? `line ${r.line}` : `row ${r.row}`}</td>
              <td class="mono">{r.id ?? '—'}</td>
              <td class="mono">{r.code}</td>
              <td>{r.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="pager">
        <label class="inline">
          Per page{' '}
          <select
            value={String(limit)}
            onChange={(e) => {
              setLimit(Number((e.currentTarget as HTMLSelectElement).value));
              setCursors([undefined]);
            }}
          >
            {[5, 20, 100].map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <button disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>{' '}
        <button disabled={!p?.nextCursor} onClick={() => p?.nextCursor && setCursors([...cursors, p.nextCursor])}>
          Next page
        </button>
      </div>
    </div>
  );
}
