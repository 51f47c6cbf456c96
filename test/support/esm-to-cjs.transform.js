/**
 * NestJS 12 (and a few of its dependencies) ship as ES modules, which Jest
 * cannot require() on Node 20 (it can on Node 24.9+). This transform turns
 * those modules into CommonJS for the test run only; the app itself runs them
 * natively. CommonJS files are passed through untouched.
 */
const crypto = require('node:crypto');
const ts = require('typescript');

const ESM_SYNTAX = /^\s*(import\s|import\{|export\s|export\{)/m;

module.exports = {
  process(source, filename) {
    if (!ESM_SYNTAX.test(source) && !source.includes('import.meta')) return { code: source };
    const patched = source
      // ESM modules rebuild CommonJS's own names; in CommonJS they already exist and redeclaring them is an error.
      .replace(/^\s*(?:const|let|var)\s+(require|__filename|__dirname)\s*=[^;\n]*;?/gm, '')
      .replace(/import\.meta\.url/g, 'require("node:url").pathToFileURL(__filename).href')
      .replace(/import\.meta\.dirname/g, '__dirname')
      .replace(/import\.meta\.filename/g, '__filename')
      .replace(/import\.meta\.resolve/g, 'require.resolve');
    const out = ts.transpileModule(patched, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, allowJs: true, sourceMap: false },
    });
    return { code: out.outputText };
  },
  getCacheKey(source, filename) {
    return crypto.createHash('sha1').update('esm-to-cjs-2').update(filename).update(source).digest('hex');
  },
};
