/** Reading the project's documentation in tests that keep it complete. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The rows of every Markdown table in docs/`name`, as trimmed cells (Prettier pads them). */
export async function docsTableRows(name: string): Promise<string[][]> {
  // From dist/tests/helpers/ to the repository's docs/.
  const text = await readFile(
    fileURLToPath(new URL(`../../../docs/${name}`, import.meta.url)),
    'utf8',
  );
  return text
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.split('|').map((cell) => cell.trim()));
}
