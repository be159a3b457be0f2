// zod's own wording ("Invalid input: expected array, received number", "Unrecognized key:
// \"x\"") for the fields whose schema gives no message of its own, in the words the catalog's
// messages use: what was expected, and the value found. Set once for the process (zod's
// global error map, below every schema's own message), so the file, etcd and Consul sources,
// which all validate with these schemas, read alike. Found by test/fuzz/documents.test.ts.
import { z } from 'zod';

const KIND: Readonly<Record<string, string>> = {
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

z.config({
  customError: (issue) => {
    if (issue.code === 'invalid_type')
      return `expected ${KIND[issue.expected] ?? issue.expected}, got ${show(issue.input)}`;
    if (issue.code === 'unrecognized_keys')
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    return undefined;
  },
});
