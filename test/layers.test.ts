// lib/ is in layers: every import runs downward, across folders only through index.ts, and the
// README's Layout section names the same folders.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { importProblem, LAYERS, layerViolations } from '../scripts/layers';

describe("lib/'s layers", () => {
  it('every import in lib/ runs downward, across folders through index.ts', () => {
    expect(layerViolations(path.join(PROJECT_ROOT, 'lib'))).toEqual([]);
  });

  it('names an upward import, a same-layer import, a deep import, a bare folder import and a folder outside the layers', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-layers-'));
    try {
      const write = (file: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), text);
      };
      for (const f of LAYERS.flat()) write(`${f}/index.ts`, '');
      write('config.ts', '');
      write(
        'model/model.ts',
        "import { train } from '../train/index';\nimport type { Batch } from '../data/index';\nimport { PATHS } from '../config';\nimport { a } from './resnet';\n",
      );
      write(
        'train/loop.ts',
        "import { safetensors } from '../formats/safetensors';\nimport { Model } from '../model/index';\nimport { loop } from '../runtime';\n",
      );
      write('extras/x.ts', '');
      const problems = layerViolations(dir);
      expect(problems).toHaveLength(5);
      expect(problems.find((p) => p.includes("model/model.ts imports '../train/index'"))).toMatch(
        /must not import train .*above it/,
      );
      expect(problems.find((p) => p.includes("model/model.ts imports '../data/index'"))).toMatch(/one layer/);
      expect(problems.find((p) => p.includes('formats/safetensors'))).toMatch(
        /through its index\.ts \('\.\.\/formats\/index'\)/,
      );
      expect(problems.find((p) => p.includes('extras'))).toMatch(/not a layer folder/);
      expect(problems.find((p) => p.includes("imports '../runtime'"))).toMatch(/write '\.\.\/runtime\/index' \(tslab/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lib/config.ts imports no layer', () => {
    expect(importProblem({ from: 'config.ts', specifier: './model', target: 'model' })).toMatch(/below every layer/);
  });

  it("the README's Layout section lists each layer folder once, top layer first", () => {
    const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const block = readme.slice(readme.indexOf('<!-- LAYERS_BEGIN -->'), readme.indexOf('<!-- LAYERS_END -->'));
    const listed = [...block.matchAll(/^- `lib\/([a-z]+)`/gm)].map((m) => m[1]);
    expect(listed).toEqual([...LAYERS].reverse().flat());
    const onDisk = fs
      .readdirSync(path.join(PROJECT_ROOT, 'lib'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(onDisk.sort()).toEqual(LAYERS.flat().sort());
  });
});
