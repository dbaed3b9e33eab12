/**
 * The `runwatch run` line parser and tracker: what people's scripts print.
 */
import { describe, expect, it } from 'vitest';
import { LineSplitter, parseProgressLine, ProgressTracker } from '../../src/cli/progress-parser.js';

describe('parseProgressLine', () => {
  it.each([
    ['embed:  45%|████▌     | 45/100 [00:01<00:01, 44.21it/s]', { completed: 45, total: 100, stage: 'embed' }],
    [' 45%|████▌     | 45/100 [00:01<00:01, 44.21it/s]', { completed: 45, total: 100 }],
    ['100%|██████████| 100/100 [00:02<00:00, 49.80it/s]', { completed: 100, total: 100 }],
    ['docs:  12%|█▏        | 1.23k/10.0k [00:03<00:21, 410docs/s]', { completed: 1230, total: 10000, stage: 'docs' }],
    ['Evaluating:  3%|▎         | 3/100 [00:00<00:05, 17.72 samples/s]', { completed: 3, total: 100, stage: 'Evaluating' }],
    ['\u001b[32mtrain:  50%|█████     | 5/10 [00:05<00:05,  1.00s/it]\u001b[0m', { completed: 5, total: 10, stage: 'train' }],
    ['scan: 123it [00:01, 99.10it/s]', { completed: 123, stage: 'scan' }],
    ['4567it [00:12, 380.5it/s]', { completed: 4567 }],
    ['{"completed": 40, "total": 80, "stage": "index"}', { completed: 40, total: 80, stage: 'index' }],
    ['{"completed": 7}', { completed: 7 }],
    ['processed 45/100 files', { completed: 45, total: 100 }],
    ['[12/300] resize image.png', { completed: 12, total: 300 }],
    ['item 3 of 9', { completed: 3, total: 9 }],
    ['progress: 42.5%', { percent: 42.5 }],
    ['done 99 %', { percent: 99 }],
  ])('%s', (line, expected) => {
    expect(parseProgressLine(line)).toEqual(expected);
  });

  it.each([
    'hello world',
    '',
    '{"level":"info","msg":"starting"}',
    'date 2026/11/21 at 10:00',
    'ratio 5/3 is not progress',
    'loaded config from ./a/b',
    'version 1.2.3',
    'cpu 250% busy',
  ])('ignores %j', (line) => {
    expect(parseProgressLine(line)).toBeNull();
  });
});

describe('ProgressTracker', () => {
  it('follows one bar and reports only changes', () => {
    const t = new ProgressTracker();
    expect(t.update({ completed: 0, total: 10, stage: 'load' })).toEqual({ completed: 0, total: 10, stage: 'load' });
    expect(t.update({ completed: 0, total: 10, stage: 'load' })).toBeNull();
    expect(t.update({ completed: 4, total: 10, stage: 'load' })).toEqual({ completed: 4, total: 10 });
  });

  it('adds a second loop on top of the first instead of going backwards', () => {
    const t = new ProgressTracker();
    t.update({ completed: 10, total: 10, stage: 'epoch 1' });
    expect(t.update({ completed: 0, total: 10, stage: 'epoch 2' })).toEqual({ completed: 10, total: 20, stage: 'epoch 2' });
    expect(t.update({ completed: 3, total: 10 })).toEqual({ completed: 13, total: 20 });
  });

  it('maps percentages onto --total, or onto 100', () => {
    const fixed = new ProgressTracker(2000);
    expect(fixed.update({ percent: 25 })).toEqual({ completed: 500, total: 2000 });
    const open = new ProgressTracker();
    expect(open.update({ percent: 42.5 })).toEqual({ completed: 42, total: 100 });
    expect(open.update({ percent: 30 })).toBeNull();
  });

  it('clamps to a fixed total', () => {
    const t = new ProgressTracker(50);
    expect(t.update({ completed: 80, total: 100 })).toEqual({ completed: 50, total: 50 });
  });
});

describe('LineSplitter', () => {
  it('splits on \\n, \\r\\n and the \\r progress bars redraw with', () => {
    const s = new LineSplitter();
    expect(s.push('a\rb')).toEqual(['a']);
    expect(s.push('c\r\nd\n')).toEqual(['bc', 'd']);
    expect(s.push('tail')).toEqual([]);
    expect(s.partial).toBe('tail'); // the bar being drawn now: runwatch run parses it at once
    expect(s.end()).toEqual(['tail']);
  });
});
