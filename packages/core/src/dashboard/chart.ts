/**
 * The throughput / failure-rate chart: an inline SVG of finished tasks per
 * bucket (succeeded green, failed red, stacked), with the window's totals.
 */
import { html, type Html } from './html.js';
import type { RateBucket } from './rate-series.js';

const W = 600;
const H = 120;

/** The chart for `buckets` (oldest first), `bucketSeconds` wide each. */
export function rateChart(buckets: readonly RateBucket[], bucketSeconds: number): Html {
  const max = Math.max(1, ...buckets.map((b) => b.succeeded + b.failed));
  const barW = W / Math.max(1, buckets.length);
  const y = (n: number) => (n / max) * (H - 14);
  const succeeded = buckets.reduce((a, b) => a + b.succeeded, 0);
  const failed = buckets.reduce((a, b) => a + b.failed, 0);
  const minutes = (buckets.length * bucketSeconds) / 60;
  const perMin = (succeeded + failed) / minutes;
  const rate = succeeded + failed === 0 ? 0 : (100 * failed) / (succeeded + failed);
  const bars = buckets.map((b, i) => {
    const x = (i * barW).toFixed(1);
    const hs = y(b.succeeded);
    const hf = y(b.failed);
    const title = `${new Date(b.start * 1000).toISOString().slice(11, 19)} UTC: ${b.succeeded} succeeded, ${b.failed} failed`;
    return html`<g><title>${title}</title><rect class="ok" x="${x}" y="${(H - hs).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${hs.toFixed(1)}"></rect><rect class="bad" x="${x}" y="${(H - hs - hf).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${hf.toFixed(1)}"></rect></g>`;
  });
  return html`<p class="chart-legend"><span class="ok">■</span> succeeded <b data-total="succeeded">${succeeded}</b> · <span class="bad">■</span> failed <b data-total="failed">${failed}</b> · ${perMin.toFixed(1)} tasks/min · failure rate <b data-total="failure-rate">${rate.toFixed(1)}%</b> <small>(last ${minutes} min, ${bucketSeconds} s bars; max ${max})</small></p>
<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="tasks finished per ${bucketSeconds} seconds">${bars}<line x1="0" y1="${H}" x2="${W}" y2="${H}" class="axis"></line></svg>`;
}
