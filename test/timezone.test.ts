/**
 * One source for the exchange time zone (issue 8 §4): the NYSE calendar's NYSE_TIME_ZONE. No other
 * module names the zone, the schedules take it from there, and MARKET_TIMEZONE, which once claimed
 * to govern sessions and schedules while governing neither, is refused when set to another zone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NYSE_TIME_ZONE } from '../core/calendar/nyse.ts';
import { loadConfig } from '../core/config.ts';
import { jobNames } from '../jobs/catalogue.ts';
import { jobOptions } from '../jobs/options.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CALENDAR = 'core/calendar/nyse.ts';

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

describe('the exchange time zone', () => {
  it('is named by the calendar only: no other module, SQL included, spells a zone or reads a setting', () => {
    const offending: string[] = [];
    for (const dir of ['core', 'jobs', 'api', 'workers', 'migrations', 'scripts', 'bench']) {
      for (const file of sources(dir)) {
        const rel = relative(ROOT, join(ROOT, file));
        if (rel === CALENDAR) continue;
        const text = readFileSync(join(ROOT, file), 'utf8');
        text.split('\n').forEach((line, i) => {
          // A zone name in a string (the calendar's or any other IANA "Area/City"), an SQL
          // `at time zone '<literal>'` other than UTC, or the old setting.
          if (
            /['"`](America|Europe|Asia|Australia|Pacific|Atlantic|Africa)\/[A-Za-z_]+/.test(line) ||
            /at time zone '(?!UTC')/i.test(line) ||
            /market\.timezone/.test(line)
          ) {
            offending.push(`${rel}:${i + 1}: ${line.trim()}`);
          }
        });
      }
    }
    expect(offending).toEqual([]);
  });

  it('is the one every Job Scheduler runs in', () => {
    const zones = new Set(jobNames.flatMap((n) => jobOptions[n].schedules.map((s) => s.tz)));
    expect([...zones]).toEqual([NYSE_TIME_ZONE]);
  });

  it('is not a setting: MARKET_TIMEZONE set to another zone is refused, naming why', () => {
    expect(() => loadConfig({ MARKET_TIMEZONE: 'Europe/London' })).toThrow(
      /MARKET_TIMEZONE: .*exchange calendar \(NYSE\) fixes the time zone at America\/New_York/,
    );
    // The calendar's own zone (an old deployment's explicit default) is harmless and accepted.
    const config = loadConfig({ MARKET_TIMEZONE: NYSE_TIME_ZONE });
    expect(config.market).not.toHaveProperty('timezone');
    expect(loadConfig({}).market).not.toHaveProperty('timezone');
  });
});
