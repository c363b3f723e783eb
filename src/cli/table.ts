/**
 * Aligned text tables, as `docker ps`. Apart from format.ts, which needs the
 * generated types (and so grpc-js), for commands that never call a server.
 */

/** Left-aligned columns separated by three spaces, as `docker ps`; no trailing spaces. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = columnWidths([header, ...rows]);
  return [header, ...rows].map((row) => formatRow(row, widths)).join('\n');
}

/** The width of each column of `rows`: its widest cell. */
export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  return (rows[0] ?? []).map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
}

/** One line of a table with these column widths (a wider cell pushes the rest right). */
export function formatRow(row: readonly string[], widths: readonly number[]): string {
  return row
    .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)))
    .join('   ')
    .trimEnd();
}
