import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

describe('API types', () => {
  it('reach the app through @/api/types only: nothing outside src/api imports the generated schema', () => {
    const offenders = sources(SRC)
      .filter((f) => !relative(SRC, f).startsWith('api/'))
      .filter((f) => /from\s+['"](@\/api\/schema|(\.\.\/)+api\/schema)['"]/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(offenders).toEqual([]);
  });

  it('finds the files it checks (the scan is not vacuous)', () => {
    const files = sources(SRC).map((f) => relative(SRC, f));
    expect(files).toContain('features/admin/LimitsTab.tsx');
    expect(files).toContain('features/accounts/index.tsx');
  });
});
