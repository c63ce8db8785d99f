/** Small shared pieces: errors, progress bars, the collection picker, key/value lists. */
import { Fragment, type ComponentChildren } from 'preact';
import { ShoalApiError } from '../../clients/typescript/src/index.js';
import { errorText, useLoad } from './api.js';
import { href, navigate } from './router.js';

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {errorText(error)}
      {error instanceof ShoalApiError && error.status === 401
        ? ' — check the API key (Forget key, then paste it again).'
        : ''}
    </div>
  );
}

export function Progress({ value, label }: { value: number; label: string }) {
  const pct = Math.max(0, Math.min(100, value));
  return (
    <div
      class="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(pct)}
      aria-valuetext={`${Math.round(pct)} %`}
    >
      <div class="progress-fill" style={{ width: `${pct}%` }} />
      <span class="progress-text">{Math.round(pct)} %</span>
    </div>
  );
}

export function Page({
  title,
  actions,
  children,
}: {
  title: string;
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <section aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title">{title}</h1>
        {actions}
      </header>
      {children}
    </section>
  );
}

/** A select of the collections that navigates to `#/<base>/<name>`. */
export function CollectionPicker({ base, value }: { base: string; value: string | undefined }) {
  const list = useLoad((c) => c.collections.list(), []);
  return (
    <label class="inline">
      Collection{' '}
      <select
        value={value ?? ''}
        onChange={(e) => navigate(href(base, (e.currentTarget as HTMLSelectElement).value))}
        disabled={!list.data}
      >
        <option value="" disabled>
          {list.data ? 'choose…' : 'loading…'}
        </option>
        {list.data?.map((c) => (
          <option key={c.name} value={c.name}>
            {c.name}
          </option>
        ))}
      </select>
      <ErrorBox error={list.error} />
    </label>
  );
}

export function KeyValues({ items }: { items: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="kv">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Json({ value }: { value: unknown }) {
  if (value === undefined || value === null) return <span class="muted">—</span>;
  if (typeof value !== 'object' || Array.isArray(value)) return <code class="json">{JSON.stringify(value)}</code>;
  // A break opportunity after each member: a narrow column wraps between members, not inside a key.
  const members = Object.entries(value).filter(([, v]) => v !== undefined);
  return (
    <code class="json">
      {'{'}
      {members.map(([k, v], i) => (
        <Fragment key={k}>
          {i ? ',' : ''}
          {i ? <wbr /> : null}
          {`${JSON.stringify(k)}:${JSON.stringify(v)}`}
        </Fragment>
      ))}
      {'}'}
    </code>
  );
}
