// Every error class in src/ names itself (`override readonly name: string = 'AuthError'`). The
// shipped CLI is minified without esbuild's keepNames (scripts/bundle-cli.mjs: its __name
// wrappers held ~1.3 MiB of an idle serve's heap), so a class's own name is `o` or `Bt` there:
// `err.name`, stack traces and the logs' err.type (src/telemetry/logger.ts) would say that.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cli-process.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** `file: Class` for each class extending an error class that does not name itself. */
function unnamedErrorClasses(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) && node.name && extendsAnError(node)) {
      if (!namesItself(node)) found.push(`${relative(repoRoot, file)}: ${node.name.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function extendsAnError(node: ts.ClassDeclaration): boolean {
  return (node.heritageClauses ?? []).some(
    (h) =>
      h.token === ts.SyntaxKind.ExtendsKeyword &&
      h.types.some((t) => /Error$/.test(t.expression.getText())),
  );
}

/**
 * A `name` property of its own, a constructor parameter property called name, or
 * `this.name = '...'` (a string literal) in its constructor.
 */
function namesItself(node: ts.ClassDeclaration): boolean {
  return node.members.some(
    (m) =>
      (ts.isPropertyDeclaration(m) && m.name.getText() === 'name') ||
      (ts.isConstructorDeclaration(m) &&
        (m.parameters.some((p) => p.modifiers?.length && p.name.getText() === 'name') ||
          (m.body?.statements ?? []).some(
            (s) =>
              ts.isExpressionStatement(s) &&
              ts.isBinaryExpression(s.expression) &&
              s.expression.left.getText() === 'this.name' &&
              ts.isStringLiteralLike(s.expression.right),
          ))),
  );
}

describe('error classes', () => {
  it('each names itself, so a minified bundle still says which error it was', () => {
    const files = sourceFiles(join(repoRoot, 'src'));
    expect(files.length).toBeGreaterThan(100);
    expect(files.flatMap(unnamedErrorClasses)).toEqual([]);
  });

  it('finds a class that does not', () => {
    const file = ts.createSourceFile(
      'x.ts',
      [
        'class A extends Error {}',
        'class B extends AError { override readonly name: string = "B"; }',
        'class C extends Error { constructor() { super(); this.name = new.target.name; } }',
        "class D extends Error { constructor() { super(); this.name = 'D'; } }",
      ].join('\n'),
      ts.ScriptTarget.Latest,
      true,
    );
    const classes = file.statements.filter(ts.isClassDeclaration);
    expect(classes.map((c) => [c.name!.text, extendsAnError(c), namesItself(c)])).toEqual([
      ['A', true, false],
      ['B', true, true],
      ['C', true, false],
      ['D', true, true],
    ]);
  });
});
