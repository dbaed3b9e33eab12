/**
 * Pure text formatting for the CLI: durations, rates, progress cells, colour.
 */

/** Seconds as `45s`, `3m 05s`, `2h 07m`; `-` when null or not finite. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Items per second as `12.3/s` (3 significant digits, `k` above 10 000); `-` when unknown. */
export function formatRate(rate: number | null | undefined): string {
  if (rate == null || !Number.isFinite(rate)) return '-';
  if (rate >= 10_000) return `${(rate / 1000).toFixed(1)}k/s`;
  return `${rate >= 100 ? Math.round(rate) : rate.toPrecision(3).replace(/\.?0+$/, '')}/s`;
}

/** `completed/total` (or `completed/?` while the total is unknown). */
export const formatCount = (completed: number, total: number | null | undefined) => `${completed}/${total ?? '?'}`;

/** Percent (0..100) rounded down, as `42%`; `-` when unknown. */
export function formatPercent(percent: number | null | undefined): string {
  if (percent == null || !Number.isFinite(percent)) return '-';
  return `${Math.floor(percent)}%`;
}

/** A text bar of `width` cells for `fraction` (0..1); an indeterminate bar when null. */
export function textBar(fraction: number | null, width = 24): string {
  if (fraction == null) return '░'.repeat(width);
  const full = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return '█'.repeat(full) + '░'.repeat(width - full);
}

const CODES = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
/** A colour name of {@link paint}. */
export type Colour = keyof typeof CODES;

/** Wraps text in an ANSI colour when `enabled` (pass false for pipes and NO_COLOR). */
export const paint = (text: string, colour: Colour, enabled: boolean) => (enabled ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text);

/** The colour a status is shown in: FAILED red, CANCELLED yellow, COMPLETED green, else none. */
export function statusColour(status: string): Colour | null {
  if (status === 'FAILED') return 'red';
  if (status === 'CANCELLED') return 'yellow';
  if (status === 'COMPLETED') return 'green';
  return null;
}

/** Lays rows out as a left-aligned table with two spaces between columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
