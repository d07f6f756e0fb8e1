/**
 * Lines of a plain-text table: every column but the last padded to its widest
 * cell, two spaces apart, no trailing blanks. The first row is the header.
 */
export function formatTable(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)))
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd())
}
