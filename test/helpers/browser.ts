/** Debian's Chromium for browser tests (npm test installs it when run as root), driven by playwright-core. */
import { spawnSync } from 'node:child_process';
import { Browser, chromium } from 'playwright-core';

/** The Chromium executable on PATH, or null. */
export function findChromium(): string | null {
  for (const c of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
  }
  return null;
}

/** Launches headless Chromium; a clear error when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  const exe = findChromium();
  if (!exe) throw new Error('Chromium is needed for this test: apt-get install chromium (npm test installs it when run as root)');
  return chromium.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu'] });
}
