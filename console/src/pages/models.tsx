/** Models: registry versions with their artifacts, model aliases, and the collections bound to each. */
import type { Collection, ModelVersion } from '../../../clients/typescript/src/index.js';
import { fmtBytes, fmtTime, useLoad } from '../api.js';
import { href } from '../router.js';
import { ErrorBox, Page } from '../ui.js';

interface ModelView {
  name: string;
  versions: ModelVersion[];
  aliases: Array<{ name: string; version: number; revision: number }>;
}

export function ModelsPage() {
  const data = useLoad(async (client) => {
    // The listing's `versions` is a count on the wire; the full model (versions, aliases) is one read each.
    const [listed, collections] = await Promise.all([client.models.list(), client.collections.list()]);
    const models = await Promise.all(
      listed.map((m) => client.models.get(m.name) as Promise<unknown> as Promise<ModelView>),
    );
    return { models, collections };
  }, []);
  return (
    <Page title="Models" actions={<button onClick={data.reload}>Refresh</button>}>
      <ErrorBox error={data.error} />
      {data.data && !data.data.models.length ? <p class="muted">No models registered.</p> : null}
      {data.data?.models.map((m) => (
        <Model key={m.name} model={m} collections={data.data?.collections ?? []} />
      ))}
    </Page>
  );
}

function Model({ model, collections }: { model: ModelView; collections: Collection[] }) {
  const bound = (v: number) => collections.filter((c) => c.model?.name === model.name && c.model.version === v);
  return (
    <div class="card">
      <h2>{model.name}</h2>
      <p>
        Aliases:{' '}
        {model.aliases.length
          ? model.aliases.map((a) => `${a.name} → v${a.version} (r${a.revision})`).join(', ')
          : 'none'}
      </p>
      <table class="data">
        <thead>
          <tr>
            <th scope="col">version</th>
            <th scope="col">state</th>
            <th scope="col">dim / metric</th>
            <th scope="col" class="num">
              artifact
            </th>
            <th scope="col">sha256</th>
            <th scope="col">aliases</th>
            <th scope="col">collections</th>
            <th scope="col">created</th>
          </tr>
        </thead>
        <tbody>
          {model.versions.map((v) => (
            <tr key={v.version}>
              <th scope="row">v{v.version}</th>
              <td>{v.state}</td>
              <td>
                {v.dimension} / {v.metric}
              </td>
              <td class="num">{fmtBytes(v.artifact?.bytes)}</td>
              <td class="mono hash" title={v.artifact?.sha256}>
                {v.artifact?.sha256 ?? '—'}
              </td>
              <td>
                {model.aliases
                  .filter((a) => a.version === v.version)
                  .map((a) => a.name)
                  .join(', ') || '—'}
              </td>
              <td>
                {bound(v.version).map((c) => (
                  <a key={c.name} href={href('collections', c.name)}>
                    {c.name}{' '}
                  </a>
                ))}
                {bound(v.version).length ? null : '—'}
              </td>
              <td>{fmtTime(v.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
