// The short report: the committed copy is what the recorded results and the report's code give now,
// its PDF was printed from that HTML, it stays within the page budget, and it shows no machine details.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PATHS } from '../lib/config';
import { README, withBlock } from '../lib/experiments/results-doc';
import { gatherFacts, labReportHtml, readmeKeyResults, writeLabReport } from '../lib/report/lab-report';

const committed = path.dirname(PATHS.recordedLabReport);
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('the committed short report (report/)', () => {
  it('is what `npm run report -- --recorded` builds from the recorded results now', () => {
    const html = labReportHtml(gatherFacts({ mode: 'recorded' }));
    const file = path.join(committed, 'lab-report.html');
    expect(fs.existsSync(file), 'report/lab-report.html is missing: run npm run report -- --recorded').toBe(true);
    // A difference means the recorded results or the report's code changed since it was built.
    expect(
      html === fs.readFileSync(file, 'utf8'),
      'report/lab-report.html is stale: run npm run report -- --recorded and commit report/',
    ).toBe(true);
  });

  it("is quoted by README.md's generated key results, which say which precision the suites use", () => {
    const readme = fs.readFileSync(README, 'utf8');
    const key = readmeKeyResults(gatherFacts({ mode: 'recorded' }));
    expect(
      readme === withBlock(readme, 'answers', key),
      "README.md's key results are stale: run npm run report -- --recorded",
    ).toBe(true);
    expect(key).toMatch(/The recorded suite trains in fp32, and bf16 in the dynamic-bf16 arm/);
    expect(key).toMatch(/dynamic-bf16 − dynamic is/);
  });

  it('has its PDF printed from that HTML, within 12 pages', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(committed, 'lab-report.json'), 'utf8')) as {
      html: string;
      pdf: string;
      pages: number;
    };
    expect(manifest.html).toBe(sha256(path.join(committed, 'lab-report.html')));
    expect(manifest.pdf).toBe(sha256(PATHS.recordedLabReport));
    expect(manifest.pages).toBeGreaterThan(0);
    expect(manifest.pages).toBeLessThanOrEqual(12);
  });

  it('answers every question of the lab in its order, and shows no paths, progress lines or code', () => {
    const html = fs.readFileSync(path.join(committed, 'lab-report.html'), 'utf8');
    const headings = [...html.matchAll(/<h2>([\d.]+) /g)].map((m) => m[1]);
    expect(headings).toEqual(['2.1', '2.2', '2.3', '3.1', '3.2', '3.2']);
    expect(html).not.toMatch(/\/(work|home|tmp|root)\//);
    expect(html).not.toMatch(/epoch \d+\/\d+|img\/s ETA|npm warn|Traceback/);
    expect(html).not.toMatch(/<pre|function \w+\(/);
    expect(html).toMatch(/equivalent within|inconclusive at n =|better|worse/);
  });
});

describe('the report from your runs', () => {
  it('builds beside the recorded suite without any run of yours, and says where each number comes from', async () => {
    const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-lab-report-'));
    try {
      const facts = gatherFacts({ mode: 'yours', resultsDir });
      expect(facts.yours).toEqual([]);
      const files = await writeLabReport(facts, { outDir: path.join(resultsDir, 'report'), pdf: false });
      const html = fs.readFileSync(files.html, 'utf8');
      expect(html).toContain('Your runs on this machine beside the recorded suite');
      expect(html).toContain('Source: recorded suite');
      expect(files.pdf).toBeUndefined();
      expect(JSON.parse(fs.readFileSync(files.manifest, 'utf8')).html).toBe(sha256(files.html));
    } finally {
      fs.rmSync(resultsDir, { recursive: true, force: true });
    }
  });
});
