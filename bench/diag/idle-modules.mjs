// Preload for bench/idle-rss.ts's module pass (`node --import <this> …`): appends one line per
// module the process loads, `<url or path>\t<source length>`, to $LUCID_IDLE_MODULES_OUT.
// ES modules are seen by a loader hook, CommonJS files by Module.prototype._compile. The hook
// runs on a thread of its own, which costs memory: hence a pass apart from the one whose RSS is
// reported.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.LUCID_IDLE_MODULES_OUT;
if (out) {
  const Module = createRequire(import.meta.url)('node:module');
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    appendFileSync(out, `${filename}\t${content.length}\n`);
    return compile.call(this, content, filename);
  };
  const hooks = `
    import { appendFileSync } from 'node:fs';
    export async function load(url, context, next) {
      const r = await next(url, context);
      if (r.source != null && !url.startsWith('node:')) {
        appendFileSync(${JSON.stringify(out)}, url + '\\t' + r.source.length + '\\n');
      }
      return r;
    }`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}
