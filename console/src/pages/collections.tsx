/** Collections: the list with stats, create, and delete behind a typed confirmation. */
import { useState } from 'preact/hooks';
import type { Collection, LineHead, Metric } from '../../../clients/typescript/src/index.js';
import { errorText, fmtBytes, fmtNum, useClient, useLoad } from '../api.js';
import { href } from '../router.js';
import { ErrorBox, Page } from '../ui.js';

interface Row {
  collection: Collection;
  head: LineHead | null;
  error?: string;
}

export function CollectionsPage() {
  const list = useLoad(async (client): Promise<Row[]> => {
    const collections = await client.collections.list();
    // The listing has no stats; one read per collection (and its serving line for the bytes).
    return Promise.all(
      collections.map(async (c): Promise<Row> => {
        const handle = client.collection(c.name);
        try {
          const [info, lines] = await Promise.all([handle.info(), handle.candidates.list()]);
          return { collection: info, head: lines.serving.head };
        } catch (err) {
          return { collection: c, head: null, error: errorText(err) };
        }
      }),
    );
  }, []);
  const [deleting, setDeleting] = useState<string | null>(null);

  return (
    <Page title="Collections" actions={<button onClick={list.reload}>Refresh</button>}>
      <ErrorBox error={list.error} />
      <CreateForm onCreated={list.reload} />
      <table class="data" aria-busy={list.loading}>
        <caption>{list.data ? `${list.data.length} collections` : 'Loading collections…'}</caption>
        <thead>
          <tr>
            <th scope="col">name</th>
            <th scope="col">dim / metric</th>
            <th scope="col" class="num">
              count
            </th>
            <th scope="col" class="num">
              indexed
            </th>
            <th scope="col" class="num">
              pending
            </th>
            <th scope="col" class="num">
              shards / partitions
            </th>
            <th scope="col" class="num">
              version
            </th>
            <th scope="col" class="num">
              bytes
            </th>
            <th scope="col">actions</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.map(({ collection: c, head, error }) => (
            <tr key={c.name}>
              <th scope="row">
                <a href={href('collections', c.name)}>{c.name}</a>
              </th>
              <td>
                {c.dimension} / {c.metric}
              </td>
              <td class="num">{fmtNum(c.stats?.count)}</td>
              <td class="num">{fmtNum(c.stats?.indexed)}</td>
              <td class="num">{fmtNum(c.stats?.pending)}</td>
              <td class="num">
                {fmtNum(c.stats?.shards)} / {fmtNum(c.stats?.partitions ?? 0)}
              </td>
              <td class="num">{fmtNum(c.stats?.version)}</td>
              <td class="num">{fmtBytes(head?.bytes)}</td>
              <td>
                {error ? <span class="error-inline">{error}</span> : null}
                <a class="button-link" href={href('search', c.name)}>
                  Search
                </a>{' '}
                <button class="danger" onClick={() => setDeleting(c.name)} aria-label={`Delete ${c.name}`}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {deleting ? (
        <DeleteConfirm
          name={deleting}
          onDone={() => {
            setDeleting(null);
            list.reload();
          }}
          onCancel={() => setDeleting(null)}
        />
      ) : null}
    </Page>
  );
}

function CreateForm({ onCreated }: { onCreated: () => void }) {
  const client = useClient();
  const [name, setName] = useState('');
  const [dimension, setDimension] = useState('4');
  const [metric, setMetric] = useState<Metric>('cosine');
  const [engine, setEngine] = useState<'hnsw' | 'flat'>('hnsw');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="card row-form"
      aria-label="Create a collection"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          await client.collections.create({ name, dimension: Number(dimension), metric, index: { engine } });
          setName('');
          onCreated();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2>Create a collection</h2>
      <label>
        Name
        <input required value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <label>
        Dimension
        <input
          required
          type="number"
          min={1}
          max={4096}
          value={dimension}
          onInput={(e) => setDimension((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <label>
        Metric
        <select value={metric} onChange={(e) => setMetric((e.currentTarget as HTMLSelectElement).value as Metric)}>
          <option value="cosine">cosine</option>
          <option value="ip">ip</option>
          <option value="l2">l2</option>
        </select>
      </label>
      <label>
        Engine
        <select
          value={engine}
          onChange={(e) => setEngine((e.currentTarget as HTMLSelectElement).value as 'hnsw' | 'flat')}
        >
          <option value="hnsw">hnsw</option>
          <option value="flat">flat (exact)</option>
        </select>
      </label>
      <button type="submit" disabled={busy}>
        Create
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

function DeleteConfirm({ name, onDone, onCancel }: { name: string; onDone: () => void; onCancel: () => void }) {
  const client = useClient();
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <div class="card confirm" role="alertdialog" aria-labelledby="confirm-title">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (typed !== name) return;
          setBusy(true);
          try {
            await client.collections.delete(name);
            onDone();
          } catch (err) {
            setError(err);
            setBusy(false);
          }
        }}
        onKeyDown={(e) => e.key === 'Escape' && onCancel()}
      >
        <h2 id="confirm-title">Delete collection {name}?</h2>
        <p>Every vector, index version and import job of it goes. Type its name to confirm.</p>
        <label>
          Collection name
          <input
            autoFocus
            value={typed}
            onInput={(e) => setTyped((e.currentTarget as HTMLInputElement).value)}
            autocomplete="off"
          />
        </label>
        <button type="submit" class="danger" disabled={typed !== name || busy}>
          Delete for good
        </button>{' '}
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
        <ErrorBox error={error} />
      </form>
    </div>
  );
}
