/**
 * A small terminal screen for tests of what the CLI draws: a stream that says it is a TTY of `columns` width, and
 * the grid of characters a terminal would show after interpreting what was written to it. It understands what
 * cli-progress and Node's readline emit: printable text, `\r`, `\n` (as a terminal with `onlcr` shows it: to the
 * start of the next line), CSI cursor moves (A B C D G H), erase in line (K) and below (J), save/restore cursor
 * (ESC 7 / ESC 8), auto-wrap on/off (?7h / ?7l) and colours (m, ignored). Text written past the last column wraps to
 * the next line when auto-wrap is on, as a terminal does, and is counted in `overflows` either way, so a test can
 * assert that no line was ever longer than the terminal.
 */
import { PassThrough } from 'node:stream';

export interface Screen {
  /** The stream to hand to the CLI as stdout: `isTTY` true, `columns` settable (emit 'resize' after changing it). */
  out: PassThrough & { isTTY: true; columns: number };
  /** The visible rows now, trailing spaces removed, trailing empty rows dropped. */
  rows(): string[];
  /** How many times text reached past the last column (a line longer than the terminal). */
  readonly overflows: number;
}

export function fakeScreen(columns: number): Screen {
  const out = Object.assign(new PassThrough(), { isTTY: true as const, columns });
  const grid: string[][] = [];
  let row = 0;
  let col = 0;
  let saved = { row: 0, col: 0 };
  let autowrap = true;
  let overflows = 0;
  const line = (r: number) => (grid[r] ??= []);
  const put = (ch: string) => {
    if (col >= out.columns) {
      overflows++;
      if (autowrap) {
        row++;
        col = 0;
      } else col = out.columns - 1;
    }
    line(row)[col] = ch;
    col++;
  };
  const feed = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (ch === '\u001b') {
        const next = text[i + 1];
        if (next === '7' || next === '8') {
          if (next === '7') saved = { row, col };
          else ({ row, col } = saved);
          i++;
          continue;
        }
        const m = /^\[(\??)([0-9;]*)([A-Za-z])/.exec(text.slice(i + 1));
        if (!m) continue;
        i += m[0].length;
        const [, private_, params, op] = m;
        const n = Number.parseInt(params!.split(';')[0] || '', 10);
        if (private_) {
          if (params === '7') autowrap = op === 'h';
          continue;
        }
        if (op === 'A') row = Math.max(0, row - (n || 1));
        else if (op === 'B') row += n || 1;
        else if (op === 'C') col = Math.min(out.columns - 1, col + (n || 1));
        else if (op === 'D') col = Math.max(0, col - (n || 1));
        else if (op === 'G') col = (n || 1) - 1;
        else if (op === 'H') {
          const [r, c] = params!.split(';').map((p) => Number.parseInt(p || '1', 10));
          row = (r ?? 1) - 1;
          col = (c ?? 1) - 1;
        } else if (op === 'K') {
          const l = line(row);
          if (!n) l.length = Math.min(l.length, col);
          else if (n === 1) for (let k = 0; k <= col; k++) l[k] = ' ';
          else l.length = 0;
        } else if (op === 'J') {
          if (!n) {
            line(row).length = Math.min(line(row).length, col);
            grid.length = Math.min(grid.length, row + 1);
          } else if (n === 2) grid.length = 0;
        }
        continue;
      }
      if (ch === '\r') col = 0;
      else if (ch === '\n') {
        row++;
        col = 0;
      } else put(ch);
    }
  };
  out.setEncoding('utf8').on('data', (chunk: string) => feed(chunk));
  return {
    out,
    rows() {
      const rows = Array.from({ length: grid.length }, (_, r) => Array.from(grid[r] ?? [], (c) => c ?? ' ').join('').trimEnd());
      while (rows.length && !rows.at(-1)) rows.pop();
      return rows;
    },
    get overflows() {
      return overflows;
    },
  };
}
