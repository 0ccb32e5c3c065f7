// Numbers and dates as people read them.
export const money = (usd) => (usd === null || usd === undefined ? '—' : `$${Number(usd).toFixed(Number(usd) < 0.01 && Number(usd) > 0 ? 6 : 2)}`);
export const count = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString());
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
export const ms = (n) => (n === null || n === undefined ? '—' : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`);
/** Bytes as people read them. */
export const bytes = (n) => {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
};
