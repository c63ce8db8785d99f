/** The console's shell: the key gate, the navigation and the hash routes (docs/console.md). */
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { render } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { ClientContext, forgetKey, makeClient, storeKey, storedKey } from './api.js';
import { href, useRoute, type Route } from './router.js';
import { AliasesPage } from './pages/aliases.js';
import { CollectionDetail } from './pages/collection.js';
import { CollectionsPage } from './pages/collections.js';
import { ExperimentsPage } from './pages/experiments.js';
import { ImportsPage } from './pages/imports.js';
import { ModelsPage } from './pages/models.js';
import { SearchPage } from './pages/search.js';
import { TuningPage } from './pages/tuning.js';

const SECTIONS = [
  ['collections', 'Collections'],
  ['search', 'Search'],
  ['tuning', 'Evaluation'],
  ['aliases', 'Aliases'],
  ['experiments', 'Experiments'],
  ['imports', 'Imports'],
  ['models', 'Models'],
] as const;

function KeyGate({ onKey }: { onKey: (key: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <main id="main" class="gate">
      <h1>Shoal console</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) onKey(value.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="submit">Use this key</button>
        <p class="muted">
          Kept in this tab's sessionStorage only: never in a URL or a cookie, gone when the tab closes. Every request
          goes to this origin with it.
        </p>
      </form>
    </main>
  );
}

function Content({ route }: { route: Route }) {
  const [section, a, b] = route.parts;
  switch (section) {
    case undefined:
    case 'collections':
      return a ? <CollectionDetail name={a} /> : <CollectionsPage />;
    case 'search':
      return <SearchPage collection={a} query={route.query} />;
    case 'tuning':
      return <TuningPage collection={a} version={b ? Number(b) : undefined} />;
    case 'aliases':
      return <AliasesPage alias={a} />;
    case 'experiments':
      return <ExperimentsPage alias={a} />;
    case 'imports':
      return <ImportsPage collection={a} jobId={b} />;
    case 'models':
      return <ModelsPage />;
    default:
      return <p role="alert">No page at {location.hash}.</p>;
  }
}

function App() {
  const [key, setKey] = useState(storedKey);
  const route = useRoute();
  const client = useMemo(() => (key ? makeClient(key) : null), [key]);
  if (!client) {
    return (
      <KeyGate
        onKey={(k) => {
          storeKey(k);
          setKey(k);
        }}
      />
    );
  }
  const current = route.parts[0] ?? 'collections';
  return (
    <ClientContext.Provider value={client}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Shoal</span>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map(([id, label]) => (
              <li key={id}>
                <a href={href(id)} aria-current={current === id ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            forgetKey();
            setKey(null);
          }}
        >
          Forget key
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Content route={route} />
      </main>
    </ClientContext.Provider>
  );
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
