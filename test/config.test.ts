// lib/config's environment record: read once at first use (never at import), and entry points'
// flags (setEnv) move the quick-mode results paths even after lib/ was imported.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { isQuick, parseEnv, PATHS, PROJECT_ROOT, readEnv, setEnv } from '../lib/config';

describe('environment', () => {
  const before = { quick: readEnv().quick, variable: process.env.DCF_QUICK };
  afterEach(() => {
    setEnv({ quick: before.quick });
    if (before.variable === undefined) delete process.env.DCF_QUICK;
    else process.env.DCF_QUICK = before.variable;
  });

  it('parses every variable with its default', () => {
    const env = parseEnv({});
    expect(env).toMatchObject({
      quick: false,
      backend: 'auto',
      graph: true,
      fused: true,
      progressLines: false,
      oneDnn: true,
      tfLogLevel: '2',
    });
    expect(env.cacheDir).toBe(path.join(PROJECT_ROOT, '.cache'));
    expect(
      parseEnv({ DCF_QUICK: '1', DCF_GRAPH: '0', DCF_FUSED: '0', TF_ENABLE_ONEDNN_OPTS: '0', DCF_CACHE_DIR: '/tmp/c' }),
    ).toMatchObject({
      quick: true,
      graph: false,
      fused: false,
      oneDnn: false,
      cacheDir: '/tmp/c',
    });
  });

  it('importing lib/ reads and sets no environment variable (TensorFlow gets its settings from initBackend)', () => {
    const script = [
      'const before = JSON.stringify(process.env);',
      "for (const f of ['runtime', 'data', 'model', 'train', 'experiments']) require(`./lib/${f}/index`);",
      "process.stdout.write(before === JSON.stringify(process.env) ? 'unchanged' : 'changed');",
    ].join('\n');
    const env = { ...process.env };
    delete env.TF_CPP_MIN_LOG_LEVEL;
    delete env.TF_ENABLE_ONEDNN_OPTS;
    const out = execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), ['-e', script], {
      cwd: PROJECT_ROOT,
      env,
      encoding: 'utf8',
    });
    expect(out).toBe('unchanged');
  });

  it('setEnv({ quick }) after import moves the results paths and tells child processes', () => {
    setEnv({ quick: false });
    expect(PATHS.results).toBe(path.join(PROJECT_ROOT, 'results'));
    setEnv({ quick: true });
    expect(isQuick()).toBe(true);
    expect(process.env.DCF_QUICK).toBe('1');
    expect(PATHS.results).toBe(path.join(PROJECT_ROOT, 'results', 'quick'));
    expect(PATHS.runs).toBe(path.join(PROJECT_ROOT, 'results', 'quick', 'runs'));
    expect(PATHS.report).toBe(path.join(PROJECT_ROOT, 'results', 'quick', 'report'));
  });
});
