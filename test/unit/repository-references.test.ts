// The repository is self-contained: no file points at the team's brief outside it (users never
// have it), and every relative link of the README and docs/ reaches an existing file and, where
// it names one, an existing heading.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** Directories that are not the repository's own text: .gitignore'd output and git itself. */
function ignoredDirs(): Set<string> {
  const ignored = readFileSync(path.join(REPO_ROOT, '.gitignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim().replace(/\/$/, ''))
    .filter((l) => l !== '' && !l.startsWith('#') && !l.includes('*'));
  return new Set(['.git', ...ignored]);
}

function repositoryFiles(dir = REPO_ROOT, skip = ignoredDirs()): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (dir === REPO_ROOT && skip.has(name)) return [];
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? repositoryFiles(file, skip) : [file];
  });
}

const isText = (bytes: Buffer) => !bytes.subarray(0, 8000).includes(0);

/** The brief's location, spelled so that this file does not match it. */
const OUTSIDE = new RegExp(['\\.\\.', 'shared(/|\\b)'].join('/') + '|' + ['shared', '(DESIGN|AGGREGATORS|STYLE)\\.md'].join('/'));

void describe('the repository is self-contained', () => {
  void it('no file refers to the team brief outside the repository', () => {
    const offenders: string[] = [];
    for (const file of repositoryFiles()) {
      const bytes = readFileSync(file);
      if (!isText(bytes)) continue;
      bytes
        .toString('utf8')
        .split('\n')
        .forEach((line, i) => {
          if (OUTSIDE.test(line)) offenders.push(`${path.relative(REPO_ROOT, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offenders, [], `references to files outside the repository:\n${offenders.join('\n')}`);
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

interface MarkdownFile {
  links: Array<{ target: string; line: number }>;
  anchors: Set<string>;
}

function parseMarkdown(file: string): MarkdownFile {
  const links: MarkdownFile['links'] = [];
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/^\s*```/.test(line)) fenced = !fenced;
      if (fenced) return;
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      if (heading) {
        const base = slug(heading[1]!);
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        anchors.add(n === 0 ? base : `${base}-${n}`);
      }
      const prose = line.replace(/`[^`]*`/g, '');
      for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) links.push({ target: m[1]!, line: i + 1 });
    });
  return { links, anchors };
}

function markdownFiles(): string[] {
  const docs = path.join(REPO_ROOT, 'docs');
  return [path.join(REPO_ROOT, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => path.join(docs, f))];
}

/** Problems with the relative links of one Markdown file: missing files, missing headings. */
function brokenLinks(file: string, root = REPO_ROOT): string[] {
  const parsed = parseMarkdown(file);
  const problems: string[] = [];
  for (const { target, line } of parsed.links) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
    const [filePart, anchor] = target.split('#', 2) as [string, string | undefined];
    const resolved = filePart === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(filePart));
    const where = `${path.relative(root, file)}:${line}: (${target})`;
    if (!resolved.startsWith(root + path.sep)) {
      problems.push(`${where} points outside the repository`);
    } else if (!existsSync(resolved)) {
      problems.push(`${where} names a file that does not exist`);
    } else if (anchor !== undefined && resolved.endsWith('.md') && !parseMarkdown(resolved).anchors.has(anchor)) {
      problems.push(`${where} names a heading that ${path.relative(root, resolved)} does not have`);
    }
  }
  return problems;
}

void describe('links of README.md and docs/*.md', () => {
  void it('computes GitHub heading anchors', () => {
    assert.equal(slug('Control plane (NATS)'), 'control-plane-nats');
    assert.equal(slug('Diagnostics: conflicts and task affinity'), 'diagnostics-conflicts-and-task-affinity');
    assert.equal(slug('The `mtl` command'), 'the-mtl-command');
  });

  void it('every relative link reaches an existing file and heading', () => {
    const problems = markdownFiles().flatMap((f) => brokenLinks(f));
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  void it('reports a missing file, a missing heading and a link out of the tree, and accepts good links', () => {
    const root = tempDir('mtl-links-');
    mkdirSync(path.join(root, 'docs'));
    writeFileSync(path.join(root, 'docs', 'b.md'), '# B\n\n## Yes, this one\n');
    const a = path.join(root, 'docs', 'a.md');
    writeFileSync(
      a,
      ['# A', '[ok](b.md#yes-this-one) [self](#a) [web](https://example.com/x.md)', '[gone](c.md)', '[no heading](b.md#nope)', '[out](../../elsewhere.md)', '```', '[in a code block](ignored.md)', '```', '`[in code](ignored.md)`'].join('\n'),
    );
    assert.deepEqual(brokenLinks(a, root), [
      'docs/a.md:3: (c.md) names a file that does not exist',
      'docs/a.md:4: (b.md#nope) names a heading that docs/b.md does not have',
      'docs/a.md:5: (../../elsewhere.md) points outside the repository',
    ]);
  });
});
