// The lucid-mesh web console: a read-only view of the mesh, its proxies and the live event
// stream, served by the control plane at /ui. Hash routes: #/mesh, #/proxies,
// #/proxies/<node>, #/live.
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, get, token } from './api.js';
import { usePoll } from './use-poll.js';
import { LiveView } from './views/live.js';
import { MeshView } from './views/mesh.js';
import { ProxiesView, refused } from './views/proxies.js';
import { ProxyView } from './views/proxy.js';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

type Access = 'checking' | 'granted' | { refused: string };

/**
 * Whether the API answers with the token given in this tab (an empty one for a server that runs
 * --admin-auth none). Without one, nothing is asked: the form comes first.
 */
function useAccess(version: number): Access {
  const [access, setAccess] = useState<Access>('checking');
  useEffect(() => {
    if (!token.given()) {
      setAccess({ refused: '' });
      return;
    }
    setAccess('checking');
    get('/v1/proxies')
      .then(() => setAccess('granted'))
      .catch((err: Error) =>
        setAccess({
          refused:
            err instanceof ApiError && [0, 401, 403].includes(err.status)
              ? err.message
              : `the control plane did not answer: ${err.message}`,
        }),
      );
  }, [version]);
  return access;
}

function TokenForm(props: { refused: string; onToken: () => void }) {
  const [value, setValue] = useState('');
  return (
    <main class="token">
      <h1>lucid-mesh console</h1>
      <p>
        This console reads the operator API. Paste an operator token (
        <code>lucid-mesh token issue --operator</code>); it is kept in this tab only. Leave it empty
        for a control plane that runs <code>--admin-auth none</code>.
      </p>
      {props.refused && <p class="error">{props.refused}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          token.set(value.trim());
          props.onToken();
        }}
      >
        <input
          id="token"
          type="password"
          autocomplete="off"
          placeholder="operator token"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Open</button>
      </form>
    </main>
  );
}

/**
 * On every other view: how many proxies refused their configuration, linking to the list,
 * which shows them first. Without it a NACK was seen only by opening Proxies.
 */
function RefusedBadge() {
  const rows = usePoll(api.proxies, 5000);
  const n = rows.data?.filter(refused).length ?? 0;
  if (n === 0) return null;
  return (
    <a class="refused-badge" href="#/proxies">
      {n === 1 ? '1 proxy refused its configuration' : `${n} proxies refused their configuration`}
    </a>
  );
}

const TABS = [
  ['#/mesh', 'Mesh'],
  ['#/proxies', 'Proxies'],
  ['#/live', 'Live'],
] as const;

function App() {
  const hash = useHash();
  const [version, setVersion] = useState(0);
  const access = useAccess(version);
  if (access === 'checking') return <main class="loading">Connecting…</main>;
  if (access !== 'granted') {
    return <TokenForm refused={access.refused} onToken={() => setVersion((v) => v + 1)} />;
  }
  const route = hash.replace(/^#\/?/, '').split('/');
  const page = route[0] || 'mesh';
  let view;
  if (page === 'proxies' && route[1]) view = <ProxyView node={decodeURIComponent(route[1])} />;
  else if (page === 'proxies') view = <ProxiesView />;
  else if (page === 'live') view = <LiveView />;
  else view = <MeshView />;
  return (
    <>
      <header>
        <strong>lucid-mesh</strong>
        <nav>
          {TABS.map(([href, label]) => (
            <a href={href} class={`#/${page}` === href ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        {page !== 'proxies' && <RefusedBadge />}
        <span class="readonly">read-only</span>
        {token.given() && (
          <button
            class="link"
            onClick={() => {
              token.clear();
              setVersion((v) => v + 1);
            }}
          >
            Forget token
          </button>
        )}
      </header>
      {view}
    </>
  );
}

render(<App />, document.getElementById('app')!);
