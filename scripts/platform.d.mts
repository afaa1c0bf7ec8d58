// Types for platform.mjs (plain JavaScript: it runs before anything is installed).
export function nodeLines(range: string): [number, number][];
export const SUPPORTED: string;
export function platformProblem(p: {
  platform: string;
  arch: string;
  node: string;
  engines: string;
}): string | undefined;
