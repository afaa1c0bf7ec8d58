// Types for native-backend-plan.mjs (plain JavaScript: it runs before anything is installed).
export type Probe = { ok: true; version: string } | { ok: false; error: string };
export type Step = 'keep' | 'restore-cache' | 'build-from-wheel' | 'stock-download';
export const TF_VERSION: string;
export const OPTIONS: string[];
export const USAGE: string;
export function parseArgs(argv: string[]): { gpu: boolean; force: boolean; stock: boolean; unknown: string[] };
export function release(version: string | null | undefined): string | null;
export function judgeInstalled(installed: Probe, wanted: string): { keep: boolean; reason: string };
export function planSteps(state: {
  stock: boolean;
  force: boolean;
  installed: Probe | null;
  wanted: string;
  cached: boolean;
}): Step[];
export function stockWarning(version: string): string;
export interface Wheel {
  name: string;
  file: string;
  sha256: string | null;
}
export const WHEELS: { cpu: Wheel; gpu: Wheel };
export const WHEEL_PIP_TARGET: string[];
export function wheelProblem(wheel: Wheel, actual: string): string | undefined;
export function cudaRequirements(metadata: string): string[];
