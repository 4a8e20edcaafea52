// Walk one RPDE feed with @openactive/rpde-validator and print a JSON summary.
//
//   node run_validator.mjs <install dir> <feed url>
//
// <install dir> holds node_modules/@openactive/rpde-validator (see
// tests/node/test_rpde_validator.py, which installs it from the pinned
// package.json and package-lock.json next to this file).
//
// stdout: {"version", "pages": [url...], "errors": [...], "warnings": [...],
// "notices": [...], "suggestions": [...]}; each entry is {severity, rule,
// type, url, message}.  "errors" are the validator's "failure" severity.
// Exit status: 0 without errors, 1 with errors, 2 when the run itself broke.
//
// The validator silently skips a page it cannot fetch (connection refused,
// reset, ...), which would pass an unreachable feed; this runner reports every
// such page as an error of its own (rule "run_validator", type "fetch_failed").
// Log lines of the walk go to stderr.

import { createRequire } from 'node:module';
import path from 'node:path';

const [installDir, feedUrl] = process.argv.slice(2);
if (!installDir || !feedUrl) {
  process.stderr.write('usage: node run_validator.mjs <install dir> <feed url>\n');
  process.exit(2);
}

const require = createRequire(path.resolve(installDir, 'package.json'));
const { RpdeValidator } = require('@openactive/rpde-validator');
const { version } = require('@openactive/rpde-validator/package.json');

const GROUPS = { failure: 'errors', warning: 'warnings', notice: 'notices', suggestion: 'suggestions' };

// Pages requested and pages answered, from the validator's log lines
// ("Loading <url>..." and "Loaded <url>" in this pinned version).
const requested = [];
const answered = new Set();

function watch(entry) {
  process.stderr.write(`[${entry.verbosity}] ${entry.message}\n`);
  const loading = /^Loading (.*)\.\.\.$/.exec(entry.message);
  if (loading) requested.push(loading[1]);
  const loaded = /^Loaded (.*)$/.exec(entry.message);
  if (loaded) answered.add(loaded[1]);
}

try {
  const log = await RpdeValidator(feedUrl, {
    logCallback: watch,
    userAgent: 'openseats-tests',
    pageLimit: 50,
    requestDelayMs: 0,
    timeoutMs: 10000,
  });
  const summary = {
    version, pages: [], errors: [], warnings: [], notices: [], suggestions: [],
  };
  for (const page of log.pages) {
    summary.pages.push(page.url);
    for (const error of page.errors) {
      // An unknown severity counts as an error, so nothing slips through.
      const group = GROUPS[error.severity] || 'errors';
      summary[group].push({
        severity: error.severity,
        rule: error.rule,
        type: error.type,
        url: page.url,
        message: error.message,
      });
    }
  }
  if (requested.length === 0) requested.push(feedUrl);
  for (const url of requested) {
    if (!answered.has(url)) {
      summary.errors.push({
        severity: 'failure',
        rule: 'run_validator',
        type: 'fetch_failed',
        url,
        message: `The validator could not fetch ${url} (see its log on stderr)`,
      });
    }
  }
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.exit(summary.errors.length > 0 ? 1 : 0);
} catch (error) {
  process.stderr.write(`rpde-validator crashed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(2);
}
