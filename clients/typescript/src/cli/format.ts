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
  return `${rate >= 100 ? Math.round(rate) : rate.toPrecision(3).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')}/s`;
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

/**
 * A job's status as people should read it: `STALLED` for a RUNNING job that stopped reporting for longer than its
 * `heartbeatSeconds` (`stalled: true`), else its status.
 */
export const statusLabel = (job: { status: string; stalled?: boolean | null }) => (job.stalled && job.status === 'RUNNING' ? 'STALLED' : job.status);

/** The colour a status (or {@link statusLabel}) is shown in: FAILED red, CANCELLED and STALLED yellow, COMPLETED green, else none. */
export function statusColour(status: string): Colour | null {
  if (status === 'FAILED') return 'red';
  if (status === 'CANCELLED' || status === 'STALLED') return 'yellow';
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

/** One cell of a line laid out by {@link layoutLine}. */
export interface Cell {
  /** Cells with the lowest priority are dropped first when the line does not fit; `Infinity`: never dropped. */
  priority: number;
  /** Narrowest useful width in characters. */
  min: number;
  /** Width it grows to before any cell grows past its own `want` (default `min`): the width that shows it whole. */
  want?: number;
  /** Widest it grows to when there is room. */
  max: number;
  /** The cell's plain text at `width` characters (it may pad or cut; colour is added by `paint`). */
  render: (width: number) => string;
  /** Colour of the whole cell, or null. */
  colour?: Colour | null;
}

/**
 * Text that came from users (job names, stages, messages) made safe for one terminal line: line breaks and tabs
 * become the visible escapes `\\n`, `\\r`, `\\t`, and other control characters (which could move the cursor or
 * recolour the terminal) `\\xNN`. Other text is unchanged.
 */
export const oneLine = (text: string) =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

/** Cuts text to `width` characters, ending in `…` when cut. */
export const clip = (text: string, width: number) => (text.length <= width ? text : width <= 1 ? text.slice(0, width) : `${text.slice(0, width - 1)}…`);

/**
 * Lays cells out on one line of at most `width` characters (plus colour codes),
 * one space apart: drops the lowest-priority cells until the rest fit at their
 * `min` widths, then shares what is left out one character at a time, highest
 * priority first, first up to each cell's `want` (so a name is shown whole before
 * a bar grows longer), then up to its `max`. Cells keep their order. Cells with
 * priority `Infinity` are never dropped (they may overflow a very narrow terminal).
 */
export function layoutLine(cells: Cell[], width: number, colour = false): string {
  const kept = [...cells];
  const used = () => kept.reduce((sum, c) => sum + c.min, 0) + Math.max(0, kept.length - 1);
  while (used() > width) {
    let victim = -1;
    kept.forEach((c, i) => {
      if (c.priority !== Infinity && (victim < 0 || c.priority <= kept[victim]!.priority)) victim = i;
    });
    if (victim < 0) break;
    kept.splice(victim, 1);
  }
  const widths = kept.map((c) => c.min);
  let spare = width - used();
  const growOrder = kept.map((_, i) => i).sort((a, b) => kept[b]!.priority - kept[a]!.priority);
  for (const limit of [(c: Cell) => Math.min(c.max, Math.max(c.min, c.want ?? c.min)), (c: Cell) => c.max]) {
    while (spare > 0) {
      let grew = false;
      for (const i of growOrder) {
        if (spare > 0 && widths[i]! < limit(kept[i]!)) {
          widths[i]!++;
          spare--;
          grew = true;
        }
      }
      if (!grew) break;
    }
  }
  return kept
    .map((c, i) => {
      const text = c.render(widths[i]!);
      return c.colour ? paint(text, c.colour, colour) : text;
    })
    .join(' ')
    .trimEnd();
}

/** The visible length of text that may hold ANSI colour codes. */
export const visibleLength = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '').length;

/** A table column for {@link fitTable}. */
export interface TableColumn {
  header: string;
  /** Lowest priority columns are dropped first; `Infinity`: never dropped. */
  priority: number;
  /** Cut long cells with `…` down to this width before dropping columns (default: never cut). */
  minWidth?: number;
}

/**
 * {@link table} that fits `width` characters: drops the lowest-priority columns
 * first, after cutting shrinkable columns down to their `minWidth`.
 */
export function fitTable(columns: TableColumn[], rows: string[][], width: number): string {
  let keep = columns.map((_, i) => i);
  const natural = (i: number) => Math.max(columns[i]!.header.length, ...rows.map((r) => (r[i] ?? '').length));
  for (;;) {
    const widths = keep.map((i) => natural(i));
    let total = widths.reduce((a, b) => a + b, 0) + 2 * (keep.length - 1);
    // Shrink the shrinkable columns first.
    keep.forEach((i, k) => {
      const min = columns[i]!.minWidth;
      if (total > width && min !== undefined && widths[k]! > min) {
        const cut = Math.min(widths[k]! - Math.max(min, columns[i]!.header.length), total - width);
        widths[k]! -= cut;
        total -= cut;
      }
    });
    const droppable = keep.filter((i) => columns[i]!.priority !== Infinity);
    if (total <= width || droppable.length === 0) {
      const cells = (r: string[]) => keep.map((i, k) => clip(r[i] ?? '', widths[k]!));
      return table(
        cells(columns.map((c) => c.header)),
        rows.map((r) => cells(r)),
      );
    }
    const victim = droppable.reduce((a, b) => (columns[b]!.priority <= columns[a]!.priority ? b : a));
    keep = keep.filter((i) => i !== victim);
  }
}

/**
 * Word-wraps one line of text (which may hold ANSI colour codes) to `width` visible characters: breaks only at
 * spaces, never inside a word (a single word wider than the line is cut with `…`); continuation lines start with
 * `indent`. Runs of spaces at a break are dropped.
 */
export function wrapWords(text: string, width: number, indent = ''): string[] {
  if (visibleLength(text) <= width) return [text];
  const lines: string[] = [];
  let line = '';
  let used = 0; // visible length of `line`
  let fresh = true; // nothing on `line` yet but the indent
  // Each word with the spaces before it, so a line keeps the text's own spacing (two spaces between fields).
  for (const [, gap, word] of text.matchAll(/( *)([^ ]+)/g)) {
    const w = visibleLength(word!);
    if (!fresh && used + gap!.length + w > width) {
      lines.push(line);
      line = indent;
      used = indent.length;
      fresh = true;
    }
    const sep = fresh && lines.length > 0 ? '' : gap!; // the text's own indent stays on its first line
    const room = width - used - sep.length;
    const shown = w <= room ? word! : clip(word!.replace(/\u001b\[[0-9;]*m/g, ''), Math.max(1, room));
    line += sep + shown;
    used += sep.length + visibleLength(shown);
    fresh = false;
  }
  if (!fresh) lines.push(line);
  return lines;
}

/** Splits a summary made of `sep`-joined parts into lines of at most `width` characters. */
export function wrapParts(parts: string[], width: number, sep = ' · '): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    if (line && line.length + sep.length + part.length > width) {
      lines.push(line);
      line = part;
    } else line = line ? `${line}${sep}${part}` : part;
  }
  if (line) lines.push(line);
  return lines;
}
