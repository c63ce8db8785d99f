/** Aliases: the current target, the history as a timeline, one-click rollback guarded by the revision. */
import { useState } from 'preact/hooks';
import { ShoalApiError } from '../../../clients/typescript/src/index.js';
import type { AliasTarget } from '../../../clients/typescript/src/index.js';
import { fmtTime, useClient, useLoad } from '../api.js';
import { href } from '../router.js';
import { ErrorBox, KeyValues, Page } from '../ui.js';

export function targetText(t: AliasTarget | null | undefined): string {
  if (!t) return '—';
  if (t.version !== undefined && t.version !== null) return `${t.collection} v${t.version}`;
  if (t.line) return `${t.collection} line ${t.line}`;
  return `${t.collection} (latest)`;
}

export function AliasesPage({ alias }: { alias?: string }) {
  const list = useLoad((c) => c.aliases.list(), []);
  return (
    <Page title="Aliases" actions={<button onClick={list.reload}>Refresh</button>}>
      <ErrorBox error={list.error} />
      <div class="split">
        <nav class="card" aria-label="Aliases">
          <ul class="plain">
            {list.data?.map((a) => (
              <li key={a.name}>
                <a href={href('aliases', a.name)} aria-current={a.name === alias ? 'page' : undefined}>
                  {a.name}
                </a>{' '}
                → {targetText({ collection: a.collection, version: a.version ?? undefined, line: a.line })}
                {a.experiment ? <span class="badge">experiment</span> : null}
              </li>
            ))}
            {list.data && !list.data.length ? <li class="muted">No aliases yet.</li> : null}
          </ul>
        </nav>
        {alias ? (
          <AliasDetail key={alias} alias={alias} onChanged={list.reload} />
        ) : (
          <p class="muted">Choose an alias.</p>
        )}
      </div>
    </Page>
  );
}

function AliasDetail({ alias, onChanged }: { alias: string; onChanged: () => void }) {
  const client = useClient();
  const current = useLoad((c) => c.aliases.get(alias), [alias]);
  const history = useLoad((c) => c.aliases.history(alias), [alias]);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const a = current.data;

  async function rollback() {
    if (!a) return;
    setBusy(true);
    setError(null);
    try {
      // The revision this page shows: if someone moved the alias since, the API refuses (409) instead of
      // rolling back a move the user has not seen.
      await client.aliases.rollback(alias, {
        reason: reason || 'rollback from the console',
        expectedRevision: a.revision,
      });
      setReason('');
      current.reload();
      history.reload();
      onChanged();
    } catch (err) {
      setError(err);
      if (err instanceof ShoalApiError && err.status === 409) current.reload();
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="card">
      <h2>{alias}</h2>
      <ErrorBox error={current.error ?? history.error} />
      {a ? (
        <KeyValues
          items={[
            ['target', targetText({ collection: a.collection, version: a.version ?? undefined, line: a.line })],
            ['revision', a.revision],
            ['updated', fmtTime(a.updatedAt)],
            [
              'experiment',
              a.experiment ? (
                <a href={href('experiments', alias)}>
                  {a.experiment.state} ({a.experiment.mode})
                </a>
              ) : (
                'none'
              ),
            ],
          ]}
        />
      ) : null}
      <form
        class="row-form"
        aria-label="Roll back"
        onSubmit={(e) => {
          e.preventDefault();
          void rollback();
        }}
      >
        <label>
          Reason
          <input value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <button type="submit" disabled={!a || busy || (history.data?.length ?? 0) < 2}>
          Roll back to the previous target{a ? ` (revision ${a.revision})` : ''}
        </button>
      </form>
      <ErrorBox error={error} />
      <h3>History</h3>
      <ol class="timeline" aria-label={`History of ${alias}`}>
        {history.data?.map((m) => (
          <li key={m.revision} class={`move-${m.action}`}>
            <div class="when">
              <time dateTime={m.at}>{fmtTime(m.at)}</time>
            </div>
            <div class="what">
              <strong>
                r{m.revision} {m.action}
              </strong>{' '}
              {m.from ? `${targetText(m.from)} → ` : ''}
              {targetText(m.to)}
              {m.forced ? ' (forced)' : ''}
              <div class="muted">
                by {m.by}
                {m.reason ? ` — “${m.reason}”` : ''}
              </div>
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}
