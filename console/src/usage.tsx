/**
 * Usage Data: per connection the counters of /usage, failures by reason, cache hit ratio, token
 * expiry and a per-minute chart of the last hour (uPlot); then the recent failures. Refreshes itself.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { call, type UsageAnswer, type UsageHistoryAnswer } from './api.js';

export const REFRESH_MS = 5_000;

function Chart(props: { label: string; minutes: number[]; requests: number[]; failures: number[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    const element = box.current;
    if (element === null) return undefined;
    plot.current = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: 180,
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: 'per minute', size: 50 }],
        series: [
          {},
          { label: 'Token requests', stroke: '#2563eb', width: 2, points: { show: false } },
          { label: 'Failures', stroke: '#dc2626', width: 2, points: { show: false } },
        ],
      },
      [props.minutes, props.requests, props.failures],
      element,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData([props.minutes, props.requests, props.failures]);
  }, [props.minutes, props.requests, props.failures]);
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={props.label}></div>
      <figcaption>Token requests and failures per minute, last hour</figcaption>
    </figure>
  );
}

const ratio = (value: number | null) => (value === null ? '—' : `${Math.round(value * 1000) / 10} %`);

export function UsageData() {
  const [usage, setUsage] = useState<UsageAnswer | undefined>(undefined);
  const [history, setHistory] = useState<UsageHistoryAnswer | undefined>(undefined);
  const [updated, setUpdated] = useState('');
  useEffect(() => {
    let live = true;
    const refresh = async () => {
      const [u, h] = await Promise.all([call<UsageAnswer>('GET', '/usage'), call<UsageHistoryAnswer>('GET', '/usage/history')]);
      if (!live) return;
      if (u.ok) setUsage(u.body);
      if (h.ok) setHistory(h.body);
      setUpdated(new Date().toLocaleTimeString());
    };
    void refresh();
    const timer = setInterval(() => void refresh(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  if (usage === undefined) return <p>Loading…</p>;
  return (
    <div>
      <div class="toolbar">
        <h1 tabindex={-1}>Usage Data</h1>
        <p class="hint">
          Updated {updated}; refreshes every {REFRESH_MS / 1000} s.
        </p>
      </div>
      {usage.connections.map((c) => {
        const series = history?.connections[c.connection];
        const reasons = Object.entries(c.failuresByReason);
        return (
          <section class="panel usage" key={c.connection} aria-labelledby={`usage-${c.connection}`}>
            <h2 id={`usage-${c.connection}`}>{c.displayName}</h2>
            <p class="hint">
              Connection <code>{c.connection}</code>
            </p>
            <dl class="counters">
              <div>
                <dt>Token requests</dt>
                <dd>{c.tokenRequests}</dd>
              </div>
              <div>
                <dt>Successes</dt>
                <dd>{c.successes}</dd>
              </div>
              <div>
                <dt>Failures</dt>
                <dd class={c.failures > 0 ? 'bad' : ''}>{c.failures}</dd>
              </div>
              <div>
                <dt>Cache hit ratio</dt>
                <dd>{ratio(c.cacheHitRatio)}</dd>
              </div>
              <div>
                <dt>Token expires in</dt>
                <dd>{c.tokenExpiresInSeconds === null ? 'no token' : `${c.tokenExpiresInSeconds} s`}</dd>
              </div>
            </dl>
            <h3>Failures by reason</h3>
            {reasons.length === 0 ? (
              <p class="hint">No failures.</p>
            ) : (
              <ul class="reasons">
                {reasons.map(([reason, count]) => (
                  <li>
                    <span class="badge bad">{reason}</span> {count}
                  </li>
                ))}
              </ul>
            )}
            {history === undefined || series === undefined ? null : (
              <Chart
                label={`Token requests and failures per minute for ${c.displayName}`}
                minutes={history.minutes}
                requests={series.requests}
                failures={series.failures}
              />
            )}
          </section>
        );
      })}
      <section class="panel" aria-labelledby="failures-title">
        <h2 id="failures-title">Recent failures</h2>
        {usage.recentFailures.length === 0 ? <p class="hint">None.</p> : null}
        <table class="list" aria-label="Recent failures">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Connection</th>
              <th scope="col">Route</th>
              <th scope="col">Reason</th>
              <th scope="col">OAuth error</th>
              <th scope="col">HTTP status</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {usage.recentFailures.map((f) => (
              <tr>
                <td>{new Date(f.time).toLocaleTimeString()}</td>
                <td>{f.connection}</td>
                <td>{f.route ?? '—'}</td>
                <td>{f.reason}</td>
                <td>{f.oauthError ?? '—'}</td>
                <td>{f.httpStatus ?? '—'}</td>
                <td>{f.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
