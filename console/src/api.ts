/**
 * The console's one way to the API: the TypeScript SDK at the page's own origin, with the key the user
 * pasted. The key lives in sessionStorage only (gone with the tab, never in a URL or a cookie).
 */
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { Shoal, ShoalApiError } from '../../clients/typescript/src/index.js';

const KEY_ITEM = 'shoal.console.apiKey';

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

export function makeClient(apiKey: string): Shoal {
  // One retry: a person is waiting, and the page shows the error with a way to try again.
  return new Shoal({ url: location.origin, apiKey, retries: 1, timeoutMs: 60_000 });
}

export const ClientContext = createContext<Shoal | null>(null);

export function useClient(): Shoal {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useClient outside the key gate');
  return client;
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs `load` when `deps` change (and again after `pollMs`, a number or one per answer); a stale answer never
 * overwrites a newer one. The previous data stays on screen while reloading, so nothing jumps.
 */
export function useLoad<T>(
  load: (client: Shoal) => Promise<T>,
  deps: unknown[],
  options: { pollMs?: number | ((data: T) => number | undefined) } = {},
): Loaded<T> {
  const client = useClient();
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const generation = useRef(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    const mine = ++generation.current;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setState((s) => ({ ...s, loading: true }));
    load(client).then(
      (data) => {
        if (mine !== generation.current) return;
        setState({ data, loading: false });
        const wait = typeof options.pollMs === 'function' ? options.pollMs(data) : options.pollMs;
        if (wait) timer = setTimeout(reload, wait);
      },
      (error: unknown) => {
        if (mine === generation.current) setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
    return () => {
      if (timer) clearTimeout(timer);
    };
  }, [client, tick, ...deps]);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function errorText(err: unknown): string {
  if (err instanceof ShoalApiError) {
    const field = err.field && !err.message.includes(err.field) ? ` (field: ${err.field})` : '';
    return `${err.code}: ${err.message}${field}`;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

export function fmtBytes(n: number | undefined | null): string {
  if (n === undefined || n === null) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(n: number | undefined | null, digits = 0): string {
  if (n === undefined || n === null || Number.isNaN(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtTime(iso: string | undefined | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}
