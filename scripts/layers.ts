/**
 * lib/'s layers and the rule between them: a file imports only from its own folder, from a
 * folder of a LOWER layer (through that folder's index.ts, its public face), or from lib/config.ts.
 * A folder is imported as '../model/index', not '../model': the notebooks' tslab kernel compiles
 * lib/ itself and resolves './x' to x.js only, never to a folder's index.
 *
 *   npm run lint:layers      lists every import that breaks the rule (exit 1), else says OK
 *
 * test/layers.test.ts runs the same check in `npm test`, and checks the README's Layout section
 * names the same folders.
 */
import * as fs from 'fs';
import * as path from 'path';

/** lib/'s folders from the bottom up. A folder may import the folders of lower layers, never its own layer's others. */
export const LAYERS: readonly (readonly string[])[] = [
  ['formats'],
  ['runtime'],
  ['data', 'model'],
  ['train'],
  ['experiments'],
  ['report'],
];

/** Files directly in lib/ (below every layer: constants and paths anyone may read). */
export const LIB_ROOT_FILES: readonly string[] = ['config.ts'];

export interface ImportEdge {
  /** The importing file, relative to lib/, e.g. 'train/train.ts'. */
  from: string;
  /** The specifier as written, e.g. '../model'. */
  specifier: string;
  /** The imported file or folder, relative to lib/, e.g. 'model' or 'model/weights'. */
  target: string;
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]*)['"]/gm;

/** Every relative import of every .ts file under `libDir`. */
export function libImports(libDir: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const from = path.relative(libDir, p);
        for (const m of fs.readFileSync(p, 'utf8').matchAll(SPECIFIER)) {
          edges.push({ from, specifier: m[1], target: path.relative(libDir, path.resolve(path.dirname(p), m[1])) });
        }
      }
    }
  };
  walk(libDir);
  return edges;
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

/** What is wrong with one import, or null when it follows the rule. */
export function importProblem(edge: ImportEdge): string | null {
  const fromParts = edge.from.split(path.sep);
  const toParts = edge.target.split(path.sep);
  if (edge.target.startsWith('..')) return `${edge.from} imports '${edge.specifier}', outside lib/`;
  if (toParts.length === 1 && LIB_ROOT_FILES.includes(`${toParts[0]}.ts`)) return null; // lib/config
  const fromFolder = fromParts.length > 1 ? fromParts[0] : null;
  const toFolder = toParts[0];
  if (layerOf(toFolder) < 0)
    return `${edge.from} imports '${edge.specifier}': lib/${toFolder} is not a layer folder (scripts/layers.ts LAYERS)`;
  if (fromFolder === null)
    return `lib/${edge.from} imports '${edge.specifier}': lib/config.ts sits below every layer and imports none of them`;
  if (layerOf(fromFolder) < 0) return `lib/${edge.from} is not in a layer folder (scripts/layers.ts LAYERS)`;
  if (fromFolder === toFolder) return null;
  const [a, b] = [layerOf(fromFolder), layerOf(toFolder)];
  if (b > a)
    return `lib/${edge.from} imports '${edge.specifier}': ${fromFolder} (layer ${a}) must not import ${toFolder} (layer ${b}, above it)`;
  if (b === a)
    return `lib/${edge.from} imports '${edge.specifier}': ${fromFolder} and ${toFolder} are one layer and must not import each other`;
  const index = `${path.relative(path.dirname(path.join('lib', edge.from)), path.join('lib', toFolder))}/index`;
  if (toParts.length === 1)
    return `lib/${edge.from} imports '${edge.specifier}': write '${index}' (tslab resolves a folder import to ${toFolder}.js, not to its index.ts)`;
  if (toParts.length > 2 || toParts[1] !== 'index')
    return `lib/${edge.from} imports '${edge.specifier}': import lib/${toFolder} through its index.ts ('${index}')`;
  return null;
}

/** Every broken rule in lib/ (empty: the layers hold). */
export function layerViolations(libDir: string): string[] {
  const problems: string[] = [];
  for (const dir of LAYERS.flat())
    if (!fs.existsSync(path.join(libDir, dir, 'index.ts'))) problems.push(`lib/${dir} has no index.ts`);
  for (const e of fs.readdirSync(libDir, { withFileTypes: true })) {
    if (e.isDirectory() && layerOf(e.name) < 0)
      problems.push(`lib/${e.name}/ is not a layer folder (scripts/layers.ts LAYERS)`);
    if (e.isFile() && e.name.endsWith('.ts') && !LIB_ROOT_FILES.includes(e.name))
      problems.push(`lib/${e.name} belongs in a layer folder`);
  }
  for (const edge of libImports(libDir)) {
    const p = importProblem(edge);
    if (p) problems.push(p);
  }
  return problems;
}

if (require.main === module) {
  const problems = layerViolations(path.join(__dirname, '..', 'lib'));
  for (const p of problems) console.error(p);
  console.log(
    problems.length
      ? `${problems.length} import(s) break lib/'s layers`
      : `lib/'s layers hold: ${LAYERS.map((l) => l.join(' | ')).join(' < ')}`,
  );
  process.exit(problems.length ? 1 : 0);
}
