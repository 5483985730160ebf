// (bench) The printed report: one table of figures against targets per section, then the refill
// path's breakdown, the cost lines and the bundles.

import type { BundleFigures } from './coldstart.ts';
import type { CostReport } from './cost.ts';
import type { RefillPath } from './refill-path.ts';
import type { Check, SectionResult } from './result.ts';

export function verdict(check: Check): string {
  if (check.pass === undefined) return '';
  return check.pass ? 'ok' : 'MISS';
}

function formatValue(check: Check): string {
  const value = Number.isFinite(check.value)
    ? Math.abs(check.value) >= 100
      ? check.value.toFixed(0)
      : check.value < 1 && check.unit === 'USD'
        ? check.value.toFixed(4)
        : String(Number(check.value.toFixed(3)))
    : String(check.value);
  return check.unit ? `${value} ${check.unit}` : value;
}

function table(rows: string[][], align: ('l' | 'r')[] = []): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, col) => (align[col] === 'r' ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function renderSection(result: SectionResult): string {
  const lines: string[] = [];
  const m = result.machine;
  const head =
    `== ${result.section}${result.quick ? ' (quick)' : ''}: ${(result.durationMs / 1000).toFixed(1)} s` +
    (m
      ? `; load ${m.loadBefore.join('/')} → ${m.loadAfter.join('/')} on ${m.cpus} CPUs; this process ` +
        `${m.processCpuCores} cores, event-loop delay p99 ${m.eventLoopDelayMs.p99} ms`
      : '');
  lines.push(head);
  if (!result.completed) {
    lines.push(`   FAILED: ${result.error?.split('\n')[0] ?? 'unknown error'}`);
    return lines.join('\n');
  }
  const rows = [
    ['figure', 'value', 'target', ''],
    ...result.checks.map((c) => [
      c.name,
      formatValue(c),
      c.target ?? '',
      verdict(c) + (c.note ? `  (${c.note})` : ''),
    ]),
  ];
  lines.push(indent(table(rows, ['l', 'r', 'l', 'l'])));
  if (result.section === 'refill') {
    const path = result.details.path as RefillPath | undefined;
    if (path && path.followed > 0) lines.push('', indent(renderPath(path)));
  }
  if (result.section === 'cost') {
    const cost = result.details.cost as CostReport | undefined;
    if (cost) lines.push('', indent(renderCost(cost)));
  }
  if (result.section === 'coldstart') {
    const bundles = (result.details.bundles ?? []) as BundleFigures[];
    if (bundles.length) lines.push('', indent(renderBundles(bundles)));
  }
  return lines.join('\n');
}

export function renderPath(path: RefillPath): string {
  const rows = [
    [`refill path (followed: ${path.followed})`, 'mean ms', 'p50', 'p95', 'share'],
    ...Object.values(path.segments).map((s) => [
      s.label,
      s.mean.toFixed(1),
      s.p50.toFixed(1),
      s.p95.toFixed(1),
      `${(s.share * 100).toFixed(0)} %`,
    ]),
    [
      'total (final callback sent → create received)',
      path.total.mean.toFixed(1),
      path.total.p50.toFixed(1),
      path.total.p95.toFixed(1),
      '100 %',
    ],
  ];
  const kinds = [
    ['by kind', 'mean ms', 'share'],
    ...Object.entries(path.byKind)
      .sort((a, b) => b[1].meanMs - a[1].meanMs)
      .map(([kind, v]) => [kind, v.meanMs.toFixed(1), `${(v.share * 100).toFixed(0)} %`]),
  ];
  return `${table(rows, ['l', 'r', 'r', 'r', 'r'])}\n\n${table(kinds, ['l', 'r', 'r'])}`;
}

export function renderCost(cost: CostReport): string {
  const rows = [
    ['per 1,000 calls', 'quantity', 'unit', 'USD'],
    ...cost.lines
      .filter((l) => l.quantityPer1000Calls > 0)
      .map((l) => [l.item, l.quantityPer1000Calls.toFixed(1), l.unit, l.usdPer1000Calls.toFixed(5)]),
    ['AWS total', '', '', cost.awsUsdPer1000Calls.toFixed(5)],
    ['Twilio (1 billed minute per call)', '', '', cost.twilioUsdPer1000Calls.toFixed(2)],
  ];
  return table(rows, ['l', 'r', 'l', 'r']);
}

export function renderBundles(bundles: BundleFigures[]): string {
  const rows = [
    ['bundle', 'variant', 'MB', 'init ms', 'largest parts'],
    ...bundles.map((b) => [
      b.fn,
      b.variant,
      (b.bytes / 1e6).toFixed(2),
      Number.isFinite(b.initMs) ? b.initMs.toFixed(0) : b.error ? 'error' : '—',
      b.byPackage
        .slice(0, 3)
        .map((p) => `${p.name} ${(p.bytes / 1e6).toFixed(2)}`)
        .join(', '),
    ]),
  ];
  return table(rows, ['l', 'l', 'r', 'r', 'l']);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line ? `   ${line}` : line))
    .join('\n');
}
