// Types for native-backend-plan.mjs (plain JavaScript: it runs before anything is installed).
export type Probe = { ok: true; version: string } | { ok: false; error: string };
export type Step = 'keep' | 'restore-cache' | 'build-from-wheel' | 'stock-download';
export const TF_VERSION: string;
export const OPTIONS: string[];
export const USAGE: string;
export function parseArgs(argv: string[]): { gpu: boolean; force: boolean; stock: boolean; unknown: string[] };
export function release(version: string | null | undefined): string | null;
export function judgeInstalled(installed: Probe, wanted: string): { keep: boolean; reason: string };
export function planSteps(state: { stock: boolean; force: boolean; installed: Probe | null; wanted: string; cached: boolean }): Step[];
export function stockWarning(version: string): string;
