/** Numbers, times and rates as the dashboard page and the HTML report show them. */

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

export function count(n: number): string {
  return integer.format(n);
}

export function rate(perSecond: number | undefined): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return '–';
  return perSecond >= 100 ? integer.format(perSecond) : decimal.format(perSecond);
}

/** `1h 02m`, `3m 05s`, `4.2s` */
export function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 10) return `${decimal.format(seconds)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(rest).padStart(2, '0')}s`;
  return `${rest}s`;
}

/** A local date and time, short, with its zone: `2024-11-15 10:00:03 UTC+01:00`. */
export function time(iso: string | undefined): string {
  if (iso === undefined) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${zone(date)}`;
}

/** `UTC`, `UTC+01:00`, `UTC-03:30`: the local zone's offset at that date. */
function zone(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  if (minutes === 0) return 'UTC';
  const sign = minutes > 0 ? '+' : '-';
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** `#12` for a job of `imgjob serve`; a run's uuid as it is (no `#` before it). */
export function jobLabel(id: string): string {
  return /^\d+$/.test(id) ? `#${id}` : id;
}

/** The one byte formatter of the server, the page and the report: decimal units. */
export { formatBytes as bytes } from './bytes.js';
